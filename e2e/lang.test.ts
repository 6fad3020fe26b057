// Languages and the API document's step 6 in Chromium, against a real server whose second
// listener (UI_PORT) serves the UI at http://localhost:<UI_PORT>, with the tiny test guest running.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort } from '../test/kit/index.mjs';
import { launchBrowser, shot, SHOTS, waitForPixels } from './browser.js';
import { READY_MARKER, startServer, TEST_ISO_NAME, type E2EServer } from './server.js';

const VM = 'lang-guest';
/** The options of the UI's formatDateTime, to compute the expected text here. */
const DATE_OPTS: Intl.DateTimeFormatOptions = { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' };

let server: E2EServer;
let browser: Browser;
let uiUrl: string;
let vmId: string;
let createdAt: string;
const contexts: BrowserContext[] = [];
let current: Page | undefined;

async function newPage(locale: string): Promise<Page> {
  const context = await browser.newContext({ locale, timezoneId: 'UTC', viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  current = await context.newPage();
  return current;
}

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  const uiPort = await freePort();
  server = await startServer({ env: { UI_PORT: String(uiPort) } });
  uiUrl = `http://localhost:${uiPort}`;
  browser = await launchBrowser();
  // One running guest for the whole file: the console button shows while it runs.
  const created = await server.api<{ vm: { id: string; createdAt: string } }>('POST', '/vms', { name: VM, cpus: 1, memory: 256 });
  expect(created.status).toBe(201);
  vmId = created.body.vm.id;
  createdAt = created.body.vm.createdAt;
  const mount = await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath: join(server.dataDir, 'isos', TEST_ISO_NAME) });
  expect(mount.status).toBe(200);
  expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !current) return;
  await current.screenshot({ path: join(SHOTS, `failed-lang-${ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 50)}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

describe('languages', () => {
  it('with locale it-IT the VM page is Italian: "Apri Console VNC" and an Italian date', async () => {
    const page = await newPage('it-IT');
    await page.goto(`${uiUrl}/vms/${vmId}`);
    await page.getByTestId('vm-detail-page').waitFor();
    const consoleButton = page.getByTestId('vm-detail-page').getByTestId('action-console');
    await consoleButton.waitFor({ timeout: 30_000 });
    expect((await consoleButton.textContent())?.trim()).toBe('Apri Console VNC');
    expect(await page.getByTestId('nav-vms').textContent()).toBe('Macchine');
    const italianDate = new Date(createdAt).toLocaleString('it-IT', DATE_OPTS);
    expect(italianDate).not.toBe(new Date(createdAt).toLocaleString('en', DATE_OPTS));
    expect(await page.getByTestId('vm-created').textContent()).toBe(italianDate);
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('it');
    expect(await page.getByTestId('language-switch').inputValue()).toBe('it');
    await shot(page, 'lang-01-it');
  });

  it('switching the language in the header changes the page without a reload, and is remembered', async () => {
    const page = current!;
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    await page.getByTestId('language-switch').selectOption('en');
    const consoleButton = page.getByTestId('vm-detail-page').getByTestId('action-console');
    await page.getByText('Open VNC console').waitFor();
    expect((await consoleButton.textContent())?.trim()).toBe('Open VNC console');
    expect(await page.getByTestId('nav-vms').textContent()).toBe('Machines');
    expect(await page.getByTestId('vm-created').textContent()).toBe(new Date(createdAt).toLocaleString('en', DATE_OPTS));
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
    // Remembered: a new load of the page, still from an Italian browser, stays English.
    await page.reload();
    await page.getByTestId('vm-detail-page').waitFor();
    await page.getByText('Open VNC console').waitFor();
    expect(await page.getByTestId('language-switch').inputValue()).toBe('en');
    // And back.
    await page.getByTestId('language-switch').selectOption('it');
    await page.getByText('Apri Console VNC').waitFor();
    await shot(page, 'lang-02-switched');
  });
});

describe('the API document, step 6', () => {
  it('open http://localhost:<UI_PORT>, click ⚙️ on the VM, click "Open VNC console": the guest screen is drawn', async () => {
    const page = await newPage('en-US');
    await page.goto(uiUrl);
    const row = page.getByTestId(`vm-row-${VM}`);
    await row.waitFor();
    const settings = row.getByTestId('action-settings');
    expect(await settings.textContent()).toContain('⚙️');
    await settings.click();
    await page.getByTestId('vm-detail-page').waitFor();
    expect(new URL(page.url()).pathname).toBe(`/vms/${vmId}`);
    await page.getByRole('link', { name: 'Open VNC console' }).click();
    await page.getByTestId('console-page').waitFor();
    expect(new URL(page.url()).host).toBe(new URL(uiUrl).host);
    await page.locator('[data-testid=console-state][data-state=connected]').waitFor({ timeout: 30_000 });
    await server.waitForSerial(vmId, READY_MARKER, 60_000);
    expect(await waitForPixels(page, 1000, 60_000)).toBeGreaterThan(1000);
    await shot(page, 'lang-03-step6-console');
  });
});
