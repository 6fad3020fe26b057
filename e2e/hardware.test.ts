// The VM page's Hardware section (issue 12) in Chromium against a real server: switching a stopped
// VM to UEFI + TPM from the page is what the API reads back, the header and the VM list show the
// summary line, and while the VM runs (real QEMU, OVMF and swtpm) the editor is closed with the reason.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

const VM = 'hw-vm';
interface ApiVm { id: string; name: string; status: string; firmware: string; secureBoot: boolean; tpm: boolean }

let server: E2EServer;
let browser: Browser;
let page: Page;
let vmId: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  server = await startServer();
  browser = await launchBrowser();
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const created = await server.api<{ vm: ApiVm }>('POST', '/vms', { name: VM, cpus: 1, memory: 256 });
  expect(created.status).toBe(201);
  vmId = created.body.vm.id;
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-hardware-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function apiVm(): Promise<ApiVm> {
  const { status, body } = await server.api<{ vm: ApiVm }>('GET', `/vms/${vmId}`);
  expect(status).toBe(200);
  return body.vm;
}

describe('hardware section', () => {
  it('shows BIOS for a new VM, and the list shows no summary for it', async () => {
    await page.goto(server.url + '/');
    await page.getByTestId(`vm-row-${VM}`).waitFor();
    expect(await page.getByTestId(`vm-hw-${VM}`).count()).toBe(0);
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.getByTestId('vm-hardware').waitFor();
    expect(await page.getByTestId('hw-summary').textContent()).toBe('BIOS');
    expect(await page.getByTestId('hw-firmware-value').textContent()).toBe('BIOS (SeaBIOS)');
  });

  it('switches the stopped VM to UEFI + TPM; the API reads it back and the summary says “UEFI · TPM 2.0”', async () => {
    await page.getByTestId('hw-edit').click();
    // Secure Boot cannot be ticked while the firmware is BIOS.
    expect(await page.getByTestId('hw-secure-boot').isDisabled()).toBe(true);
    await page.getByTestId('hw-firmware').selectOption('uefi');
    expect(await page.getByTestId('hw-secure-boot').isDisabled()).toBe(false);
    await page.getByTestId('hw-tpm').check();
    await shot(page, 'hardware-01-edit');
    await page.getByTestId('hw-save').click();
    await page.getByTestId('hw-saved').waitFor();
    expect(await apiVm()).toMatchObject({ firmware: 'uefi', secureBoot: false, tpm: true });
    expect(await page.getByTestId('hw-summary').textContent()).toBe('UEFI · TPM 2.0');
    expect(await page.getByTestId('vm-hw-summary').textContent()).toBe('UEFI · TPM 2.0');
    expect(await page.getByTestId('hw-tpm-value').textContent()).toBe('Yes');

    await page.getByTestId('nav-vms').click();
    const row = page.getByTestId(`vm-hw-${VM}`);
    await row.waitFor();
    expect(await row.textContent()).toBe('UEFI · TPM 2.0');
  });

  it('while the VM runs, Edit is disabled with the reason', async () => {
    const started = await server.api('POST', `/vms/${vmId}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.locator('[data-testid=vm-detail-status][data-status=running]').waitFor({ timeout: 60_000 });
    await page.getByTestId('hw-locked').waitFor();
    expect(await page.getByTestId('hw-locked').textContent()).toBe('Stop the machine to change its hardware.');
    expect(await page.getByTestId('hw-edit').isDisabled()).toBe(true);
    await shot(page, 'hardware-02-running');
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    await page.locator('[data-testid=vm-detail-status][data-status=stopped]').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('hw-edit').isDisabled()).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
