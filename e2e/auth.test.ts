// The UI against a server that requires a login (AUTH=required): the login page, a wrong and a
// right password, the console through a single-use ticket, API tokens made and revoked in the UI,
// the activity log, and logging out. One server, one browser.
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, shot, SHOTS, waitForPixels } from './browser.js';
import { READY_MARKER, startServer, TEST_ISO_NAME, type E2EServer } from './server.js';

const PASSWORD = 'correct horse battery staple';
const VM = 'auth-guest';

let server: E2EServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  server = await startServer({ env: { AUTH: 'required', ADMIN_PASSWORD: PASSWORD }, password: PASSWORD });
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('web UI with authentication required', () => {
  it('asks for the password and says why a wrong one fails', async () => {
    await page.goto(server.url + '/');
    await page.getByTestId('login-page').waitFor();
    await page.getByTestId('login-password').fill('wrong password');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('login-error').waitFor();
    expect((await page.getByTestId('login-error').textContent())?.length).toBeGreaterThan(5);
    await shot(page, '08-login');
  });

  it('logs in and opens a console through a ticket', async () => {
    await page.getByTestId('login-password').fill(PASSWORD);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('vm-list-page').waitFor();
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });

    // A VM without a disk that boots the test ISO, created through the dialog.
    await page.getByTestId('create-vm-open').click();
    await page.getByTestId('create-vm-name').fill(VM);
    await page.getByTestId('create-vm-memory').fill('256');
    await page.getByTestId('create-vm-disk-toggle').uncheck();
    const isoOption = page.getByTestId('create-vm-iso').locator('option', { hasText: TEST_ISO_NAME });
    await page.getByTestId('create-vm-iso').selectOption((await isoOption.getAttribute('value')));
    await page.getByTestId('create-vm-submit').click();
    await page.getByTestId('create-vm-dialog').waitFor({ state: 'detached', timeout: 30_000 });

    const row = page.getByTestId(`vm-row-${VM}`);
    await row.getByTestId('action-start').click();
    await page.locator(`[data-testid=vm-status-${VM}][data-status=running]`).waitFor({ timeout: 60_000 });
    await row.getByTestId('action-console').click();
    await page.locator('[data-testid=console-state][data-state=connected]').waitFor({ timeout: 30_000 });
    const { body } = await server.api<{ vms: Array<{ id: string; name: string }> }>('GET', '/vms');
    await server.waitForSerial(body.vms.find((v) => v.name === VM)!.id, READY_MARKER, 60_000);
    expect(await waitForPixels(page, 1000, 60_000)).toBeGreaterThan(1000);
  });

  it('creates an API token that works until it is revoked, and shows it in the activity log', async () => {
    const consoleUrl = page.url();
    await page.goto(server.url + '/tokens');
    await page.getByTestId('tokens-page').waitFor();
    await page.getByTestId('token-list-empty').waitFor();

    await page.getByTestId('create-token-open').click();
    await page.getByTestId('create-token-name').fill('e2e script');
    await page.getByTestId('create-token-scope-read').check();
    await page.getByTestId('create-token-expiry').selectOption('1d');
    await page.getByTestId('create-token-submit').click();
    await page.getByTestId('token-secret').waitFor();
    const secret = await page.getByTestId('token-secret').inputValue();
    expect(secret.length).toBeGreaterThan(20);
    expect(await page.getByTestId('token-secret-warning').textContent()).toMatch(/not be shown again/);
    expect(await page.getByTestId('token-example').textContent()).toBe(`curl -H "Authorization: Bearer ${secret}" ${server.url}/api/vms`);
    await shot(page, '09-tokens');
    await page.getByTestId('create-token-done').click();
    await page.getByTestId('create-token-dialog').waitFor({ state: 'detached' });

    // The token works on its own, without the browser's session cookie.
    const withToken = () => fetch(server.url + '/api/vms', { headers: { Authorization: `Bearer ${secret}` } }).then((r) => r.status);
    expect(await withToken()).toBe(200);

    const row = page.getByTestId('token-row-e2e script');
    expect(await row.getByTestId('token-state').getAttribute('data-state')).toBe('active');
    await row.getByTestId('token-revoke').click();
    await page.getByTestId('revoke-token-dialog-confirm').click();
    await page.getByTestId('revoke-token-dialog').waitFor({ state: 'detached' });
    await page.locator('[data-testid="token-row-e2e script"][data-state=revoked]').waitFor();
    expect(await row.getByTestId('token-revoke').count()).toBe(0);
    expect(await withToken()).toBe(401);

    await page.getByTestId('nav-audit').click();
    await page.getByTestId('audit-page').waitFor();
    const created = page.locator('[data-testid=audit-row][data-action="POST /api/tokens"]').first();
    await created.waitFor();
    expect(await created.getByTestId('audit-action').textContent()).toBe('Created API token');
    expect(await created.getByTestId('audit-actor').textContent()).toBe('admin (browser)');
    expect(await created.getByTestId('audit-result').textContent()).toBe('Success');
    // The revocation names the token, and starting the VM names the VM rather than its id.
    const revoked = page.locator('[data-testid=audit-row][data-action="DELETE /api/tokens/:id"]').first();
    await revoked.getByTestId('audit-target').filter({ hasText: /^e2e script$/ }).waitFor();
    const started = page.locator('[data-testid=audit-row][data-action="POST /api/vms/:vm_id/start"]').first();
    await started.getByTestId('audit-target').filter({ hasText: new RegExp(`^${VM}$`) }).waitFor();
    await shot(page, '10-activity');

    await page.goto(consoleUrl);
    await page.getByTestId('console-back').waitFor();
  });

  it('logs out back to the login page', async () => {
    await page.getByTestId('console-back').click();
    await page.getByTestId('vm-detail-page').waitFor();
    await page.getByTestId('logout').click();
    await page.getByTestId('login-page').waitFor();
    // The API really is closed again for this browser.
    const status = await page.evaluate(async () => (await fetch('/api/vms')).status);
    expect(status).toBe(401);
  });

  it('raised no uncaught errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
