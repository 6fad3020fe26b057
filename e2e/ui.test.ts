// Browser tests of the web UI against a real server, real QEMU (TCG) and the tiny test guest.
// One browser and one server for the whole file; the tests run in order and build on each other.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { canvasStats as stats, launchBrowser, shot as shotOf, SHOTS, waitForPixels } from './browser.js';
import { READY_MARKER, startServer, TEST_ISO_NAME, writeTinyIso, type E2EServer } from './server.js';

const VM = 'e2e-guest';

let server: E2EServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let tmp: string;
const pageErrors: string[] = [];

const shot = (name: string, p: Page = page) => shotOf(p, name);
const canvasStats = (p: Page = page) => stats(p);

async function vmByName(name: string) {
  const { body } = await server.api<{ vms: Array<{ id: string; name: string; status: string; disks: Array<{ path: string; diskId: string | null }>; iso: string | null }> }>('GET', '/vms');
  return body.vms.find((v) => v.name === name);
}

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  tmp = await mkdtemp(join(tmpdir(), 'qm-e2e-files-'));
  server = await startServer();
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

// On failure: a screenshot of the page and the end of the server log, to see what happened.
afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('web UI against a real server', () => {
  it('creates a VM with a new disk and the test ISO from one dialog', async () => {
    await page.goto(server.url + '/');
    await page.getByTestId('vm-list-empty').waitFor();
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });

    await page.getByTestId('create-vm-open').click();
    const dialog = page.getByTestId('create-vm-dialog');
    await dialog.waitFor();
    await page.getByTestId('create-vm-name').fill(VM);
    await page.getByTestId('create-vm-cpus').fill('1');
    await page.getByTestId('create-vm-memory').fill('256');
    await page.getByTestId('create-vm-disk-size').fill('1');
    await page.getByTestId('create-vm-disk-format').selectOption('qcow2');
    const isoOption = page.getByTestId('create-vm-iso').locator('option', { hasText: TEST_ISO_NAME });
    await page.getByTestId('create-vm-iso').selectOption((await isoOption.getAttribute('value')));
    await shot('02-create-dialog');
    await page.getByTestId('create-vm-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 60_000 });

    const row = page.getByTestId(`vm-row-${VM}`);
    await row.waitFor();
    await page.locator(`[data-testid=vm-status-${VM}][data-status=stopped]`).waitFor();
    expect(await row.textContent()).toContain(TEST_ISO_NAME);
    expect(await row.textContent()).toContain(`${VM}-disk`);
    const vm = await vmByName(VM);
    expect(vm?.disks).toHaveLength(1);
    expect(vm?.iso).toMatch(/testguest\.iso$/);
    await shot('01-list');
  });

  it('starts the VM, shows its settings and the guest screen in the console, and types into it', async () => {
    const row = page.getByTestId(`vm-row-${VM}`);
    await row.getByTestId('action-start').click();
    await page.locator(`[data-testid=vm-status-${VM}][data-status=running]`).waitFor({ timeout: 60_000 });

    // Settings page: resources locked while running, last command line shown.
    await page.getByTestId(`vm-link-${VM}`).click();
    await page.getByTestId('vm-detail-page').waitFor();
    await page.getByTestId('resources-locked').waitFor();
    expect(await page.getByTestId('resources-cpus').isDisabled()).toBe(true);
    await page.getByTestId('last-command').waitFor();
    expect(await page.getByTestId('last-command').textContent()).toContain('qemu-system');
    await shot('03-vm-settings');

    // Console, full window.
    await page.getByTestId('vm-detail-page').getByTestId('action-console').click();
    await page.getByTestId('console-page').waitFor();
    await page.locator('[data-testid=console-state][data-state=connected]').waitFor({ timeout: 30_000 });
    const vm = (await vmByName(VM))!;
    await server.waitForSerial(vm.id, READY_MARKER, 60_000);
    expect(await waitForPixels(page, 1000, 60_000)).toBeGreaterThan(1000);

    // "Type text": the keystrokes reach the guest's tty1 shell. The command also writes to the
    // serial port, which proves the characters (including shifted ones) arrived intact.
    const before = (await canvasStats()).hash;
    await page.getByTestId('console-type-text').click();
    await page.getByTestId('type-text-input').fill('echo hi\necho TYPED_$((6*7)) > /dev/ttyS0\n');
    await page.getByTestId('type-text-submit').click();
    await page.getByTestId('type-text-dialog').waitFor({ state: 'detached', timeout: 30_000 });
    await server.waitForSerial(vm.id, 'TYPED_42', 20_000);
    let after = (await canvasStats()).hash;
    for (let i = 0; i < 20 && after === before; i++) {
      await page.waitForTimeout(250);
      after = (await canvasStats()).hash;
    }
    expect(after).not.toBe(before);
    await shot('04-console');
  });

  it('shuts the VM down with ACPI and shows it stopped without a reload', async () => {
    await page.getByTestId('console-back').click();
    await page.getByTestId('vm-detail-page').waitFor();
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    await page.locator('[data-testid=vm-detail-status][data-status=running]').waitFor();
    await page.getByTestId('vm-detail-page').getByTestId('action-shutdown').click();
    await page.locator('[data-testid=vm-detail-status][data-status=stopped]').waitFor({ timeout: 90_000 });
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    // Now stopped: resources are editable again, and the list shows it stopped too.
    expect(await page.getByTestId('resources-cpus').isDisabled()).toBe(false);
    await page.getByTestId('nav-vms').click();
    await page.locator(`[data-testid=vm-status-${VM}][data-status=stopped]`).waitFor();
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
  });

  it('shows the disks page with the VM disk attached, and the list at phone width', async () => {
    await page.getByTestId('nav-disks').click();
    const diskRow = page.getByTestId(`disk-row-${VM}-disk`);
    await diskRow.waitFor();
    await page.locator(`[data-testid=disk-status-${VM}-disk][data-status=ready]`).waitFor();
    expect(await diskRow.getByTestId('disk-delete').isDisabled()).toBe(true);
    expect(await diskRow.textContent()).toContain(VM);
    await diskRow.getByText('1 GiB').waitFor();
    await shot('05-disks');

    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(server.url + '/');
    await phone.getByTestId(`vm-row-${VM}`).waitFor();
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await shot('07-phone-list', phone);
    await phone.close();
  });

  it('deletes the VM after confirming, then its disk', async () => {
    await page.getByTestId('nav-vms').click();
    const row = page.getByTestId(`vm-row-${VM}`);
    await row.getByTestId('action-menu').click();
    await row.getByTestId('action-delete').click();
    await page.getByTestId('delete-vm-dialog').waitFor();
    await page.getByTestId('delete-vm-dialog-confirm').click();
    await row.waitFor({ state: 'detached', timeout: 30_000 });
    await page.getByTestId('vm-list-empty').waitFor();
    expect(await vmByName(VM)).toBeUndefined();

    await page.getByTestId('nav-disks').click();
    const diskRow = page.getByTestId(`disk-row-${VM}-disk`);
    await diskRow.waitFor();
    await page.waitForFunction((sel) => !document.querySelector<HTMLButtonElement>(sel)?.disabled, `[data-testid="disk-row-${VM}-disk"] [data-testid=disk-delete]`, { timeout: 10_000 });
    await diskRow.getByTestId('disk-delete').click();
    await page.getByTestId('delete-disk-dialog-confirm').click();
    await diskRow.waitFor({ state: 'detached', timeout: 30_000 });
  });

  it('uploads an ISO with progress and offers it in the create dialog', async () => {
    const file = await writeTinyIso(tmp, 'tiny-e2e.iso');
    await page.getByTestId('nav-isos').click();
    await page.getByTestId(`iso-row-${TEST_ISO_NAME}`).waitFor();
    await page.getByTestId('iso-file-input').setInputFiles(file);
    expect(await page.getByTestId('iso-upload-name').inputValue()).toBe('tiny-e2e.iso');
    expect(await page.getByTestId('iso-not-iso').count()).toBe(0);
    await page.getByTestId('iso-upload-start').click();
    await page.getByTestId('iso-upload-done').waitFor({ timeout: 30_000 });
    await page.getByTestId('iso-row-tiny-e2e.iso').waitFor();

    // The same name again is refused before any upload, with the reason in words.
    await page.getByTestId('iso-file-input').setInputFiles(file);
    await page.getByText('An ISO with this name already exists.').waitFor();
    expect(await page.getByTestId('iso-upload-start').isDisabled()).toBe(true);
    await shot('06-isos');

    await page.getByTestId('nav-vms').click();
    await page.getByTestId('create-vm-open').click();
    const options = await page.getByTestId('create-vm-iso').locator('option').allTextContents();
    expect(options.some((o) => o.startsWith('tiny-e2e.iso'))).toBe(true);
    expect(options.some((o) => o.startsWith(TEST_ISO_NAME))).toBe(true);
    await page.keyboard.press('Escape');
    await page.getByTestId('create-vm-dialog').waitFor({ state: 'detached' });

    // And it can be deleted again (after confirming).
    await page.getByTestId('nav-isos').click();
    await page.getByTestId('iso-row-tiny-e2e.iso').getByTestId('iso-delete').click();
    await page.getByTestId('delete-iso-dialog-confirm').click();
    await page.getByTestId('iso-row-tiny-e2e.iso').waitFor({ state: 'detached' });
  });

  it('raised no uncaught errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
