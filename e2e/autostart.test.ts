// The Autostart editor on the VM page, in Chromium against a real server (no guest is started):
// the setting saved from the page is what the API reads back, a wrong value is refused in words
// before any request, and the VM list shows the autostart marker live.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

const VM = 'auto-vm';
interface ApiVm { id: string; name: string; autostart: { enabled: boolean; order: number; delayS: number } }

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
  await page.screenshot({ path: join(SHOTS, `failed-autostart-${name}.png`), fullPage: true }).catch(() => {});
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

describe('autostart editor', () => {
  it('the list shows no marker while autostart is off', async () => {
    expect((await apiVm()).autostart).toEqual({ enabled: false, order: 0, delayS: 0 });
    await page.goto(server.url + '/');
    await page.getByTestId(`vm-row-${VM}`).waitFor();
    expect(await page.getByTestId(`vm-autostart-${VM}`).count()).toBe(0);
  });

  it('refuses a delay out of range in words and sends nothing', async () => {
    await page.goto(`${server.url}/vms/${vmId}`);
    const section = page.getByTestId('vm-autostart');
    await section.waitFor();
    expect(await page.getByTestId('autostart-summary').textContent()).toBe('Does not start by itself.');
    await page.getByTestId('autostart-enabled').check();
    await page.getByTestId('autostart-delay').fill('4000');
    await section.getByText('A whole number of seconds from 0 to 3600.').waitFor();
    expect(await page.getByTestId('autostart-save').isDisabled()).toBe(true);
    expect((await apiVm()).autostart.enabled).toBe(false);
  });

  it('saves enabled, order and delay from the page; the API reads them back and the list marks the VM', async () => {
    await page.getByTestId('autostart-delay').fill('15');
    await page.getByTestId('autostart-order').fill('7');
    await page.getByTestId('autostart-save').click();
    await page.getByTestId('autostart-saved').waitFor();
    expect((await apiVm()).autostart).toEqual({ enabled: true, order: 7, delayS: 15 });
    expect(await page.getByTestId('autostart-summary').textContent()).toBe('Starts after a host boot, order 7, then waits 15 s.');
    await shot(page, 'autostart-01-saved');

    await page.getByTestId('nav-vms').click();
    const marker = page.getByTestId(`vm-autostart-${VM}`);
    await marker.waitFor();
    expect((await marker.textContent())?.trim()).toBe('Auto 7');
    expect(await marker.getAttribute('title')).toBe('Starts after a host boot (order 7, delay 15 s)');
  });

  it('a change made over the API shows on the open page (events), and turning it off from the page clears it', async () => {
    expect((await server.api('PUT', `/vms/${vmId}/autostart`, { enabled: true, order: 2, delayS: 0 })).status).toBe(200);
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.getByText('Starts after a host boot, order 2, then waits 0 s.').waitFor();
    expect(await page.getByTestId('autostart-order').inputValue()).toBe('2');
    await page.getByTestId('autostart-enabled').uncheck();
    await page.getByTestId('autostart-save').click();
    await page.getByText('Does not start by itself.').waitFor();
    expect((await apiVm()).autostart).toEqual({ enabled: false, order: 2, delayS: 0 });
    expect(pageErrors).toEqual([]);
  });
});
