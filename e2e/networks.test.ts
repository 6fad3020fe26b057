// Issue 11's UI (and issue 14's host dashboard) in Chromium against a real server. The e2e server
// runs in the host's own network namespace, so this test creates NO nat, isolated or bridge
// network (that would put bridges and a dnsmasq on the real host): the user network only, and a
// VM with no disk (its QEMU runs only in the last test, user-mode NIC only). Forwards use a free
// loopback port.
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { freePort, waitFor } from '../test/kit/index.mjs';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

const VM = 'i11-net';

let server: E2EServer;
let browser: Browser;
let page: Page;
let vmId: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  server = await startServer({ env: { METRICS_INTERVAL_MS: '1000' } });
  browser = await launchBrowser();
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const created = await server.api<{ vm: { id: string } }>('POST', '/vms', { name: VM, cpus: 1, memory: 64 });
  expect(created.status).toBe(201);
  vmId = created.body.vm.id;
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-networks-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('networks in the browser (issue 11)', () => {
  it('the Networks page (from the nav) lists the built-in user network and the VM on it', async () => {
    await page.goto(server.url + '/');
    await page.getByTestId('nav-networks').click();
    const user = page.getByTestId('network-user');
    await user.waitFor();
    expect(await user.getAttribute('data-type')).toBe('user');
    expect(await user.getByTestId('network-subnet').textContent()).toBe('10.0.2.0/24');
    await user.locator(`[data-testid=network-vms] a`, { hasText: VM }).waitFor();
    // The built-in network has no delete; whether managed networks are offered depends on the host (root or not).
    expect(await page.getByTestId('network-delete-user').count()).toBe(0);
    const api = await server.api<{ managed: { available: boolean; reason: string | null } }>('GET', '/networks');
    expect(await page.getByTestId('networks-unavailable').count()).toBe(api.body.managed.available ? 0 : 1);
    expect(await page.getByTestId('create-network-open').count()).toBe(api.body.managed.available ? 1 : 0);
    await shot(page, '11-networks-page');
  });

  it('create and delete dialogs: client checks, and the server’s refusals shown (answers faked in the browser: nothing reaches the host)', async () => {
    // The e2e server must not build bridges on the real host, so the browser is told managed
    // networks are available and the create/delete answers are faked at the page's network layer.
    const lab = {
      id: '55555555-5555-4555-8555-555555555555', name: 'lab', type: 'nat', bridge: 'qm-lab', subnet: '192.168.150.0/24', gateway: '192.168.150.1',
      dhcp: { start: '192.168.150.2', end: '192.168.150.254' }, leases: [{ mac: '52:54:00:aa:bb:cc', ip: '192.168.150.2', hostname: 'guest', expiresAt: null }],
      vms: [vmId], createdAt: new Date().toISOString(),
    };
    const posts: unknown[] = [];
    await page.route('**/api/networks', async (route) => {
      if (route.request().method() === 'POST') {
        posts.push(route.request().postDataJSON());
        return route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: 'subnet 192.168.150.0/24 overlaps a route of the host', code: 'NETWORK_CONFLICT', timestamp: new Date().toISOString() }) });
      }
      const real = await route.fetch();
      const body = (await real.json()) as { networks: unknown[] };
      return route.fulfill({ response: real, json: { networks: [...body.networks, lab], managed: { available: true, reason: null } } });
    });
    await page.route(`**/api/networks/${lab.id}`, (route) =>
      route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: `network lab is used by VM ${VM}`, code: 'NETWORK_IN_USE', timestamp: new Date().toISOString() }) }),
    );
    try {
      await page.goto(server.url + '/networks');
      await page.getByTestId('network-lab').getByTestId('network-leases').waitFor();
      await page.getByTestId('create-network-open').click();
      await page.getByTestId('create-network-name').fill('Bad Name');
      await page.getByTestId('create-network-subnet').fill('192.168.150.1/24');
      await page.getByTestId('create-network-submit').click();
      await page.getByText('Use 1–12 lower-case letters, digits or dashes, starting with a letter.').waitFor();
      await page.getByText('Write a subnet like 192.168.100.0/24 (/16 to /29, host bits zero).').waitFor();
      expect(posts).toEqual([]); // nothing sent while the form is wrong
      await page.getByTestId('create-network-name').fill('lab2');
      await page.getByTestId('create-network-subnet').fill('192.168.150.0/24');
      await page.getByTestId('create-network-submit').click();
      await page.locator('[data-testid=create-network-error]', { hasText: 'overlaps a route of the host' }).waitFor();
      expect(posts).toEqual([{ name: 'lab2', type: 'nat', subnet: '192.168.150.0/24' }]);
      await shot(page, '11-create-network-dialog');
      await page.keyboard.press('Escape');

      await page.getByTestId('network-delete-lab').click();
      await page.getByTestId('delete-network-confirm').click();
      await page.locator('[data-testid=delete-network-error]', { hasText: `network lab is used by VM ${VM}` }).waitFor();
      await page.getByTestId('delete-network-cancel').click();
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }
  });

  it('the VM page shows its NIC; a NIC is added and removed through the dialogs', async () => {
    await page.goto(`${server.url}/vms/${vmId}`);
    const nic0 = page.getByTestId('vm-nic-0');
    await nic0.waitFor();
    expect(await nic0.getAttribute('data-network')).toBe('user');
    expect(await nic0.getByTestId('nic-model').textContent()).toBe('virtio');
    expect(await nic0.getByTestId('nic-mac').textContent()).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);

    await page.getByTestId('nic-add-open').click();
    await page.getByTestId('add-nic-model').selectOption('e1000e');
    await page.getByTestId('add-nic-submit').click();
    const nic1 = page.getByTestId('vm-nic-1');
    await nic1.waitFor();
    expect(await nic1.getByTestId('nic-model').textContent()).toBe('e1000e');
    const nics = await server.api<{ nics: Array<{ slot: number; model: string }> }>('GET', `/vms/${vmId}/nics`);
    expect(nics.body.nics.map((n) => n.model)).toEqual(['virtio', 'e1000e']);

    await page.getByTestId('nic-remove-1').click();
    await page.getByTestId('remove-nic-confirm').click();
    await nic1.waitFor({ state: 'detached' });
    expect((await server.api<{ nics: unknown[] }>('GET', `/vms/${vmId}/nics`)).body.nics).toHaveLength(1);

    // Change the model of a stopped VM's NIC (the MAC stays).
    const mac = await nic0.getByTestId('nic-mac').textContent();
    await page.getByTestId('nic-edit-0').click();
    await page.getByTestId('edit-nic-model').selectOption('rtl8139');
    await page.getByTestId('edit-nic-submit').click();
    await nic0.getByTestId('nic-model').filter({ hasText: 'rtl8139' }).waitFor();
    expect(await nic0.getByTestId('nic-mac').textContent()).toBe(mac);
    await page.getByTestId('nic-edit-0').click();
    await page.getByTestId('edit-nic-model').selectOption('virtio');
    await page.getByTestId('edit-nic-submit').click();
    await nic0.getByTestId('nic-model').filter({ hasText: 'virtio' }).waitFor();

    // Changes made elsewhere (another client, the CLI) arrive live through the VM's events.
    const added = await server.api<{ id: string }>('POST', `/vms/${vmId}/nics`, { network: 'user', model: 'rtl8139' });
    expect(added.status).toBe(201);
    await page.getByTestId('vm-nic-1').getByTestId('nic-model').filter({ hasText: 'rtl8139' }).waitFor();
    expect([200, 204]).toContain((await server.api('DELETE', `/vms/${vmId}/nics/${added.body.id}`)).status);
    await page.getByTestId('vm-nic-1').waitFor({ state: 'detached' });
  });

  it('a TCP forward to guest port 22 is added through the dialog and the ssh line appears; a taken port shows the server’s 409', async () => {
    const hostPort = await freePort();
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.getByTestId('forwards-empty').waitFor();
    await page.getByTestId('forward-add-open').click();
    await page.getByTestId('add-forward-host-port').fill(String(hostPort));
    expect(await page.getByTestId('add-forward-guest-port').inputValue()).toBe('22');
    await page.getByTestId('add-forward-submit').click();
    await page.getByTestId(`vm-forward-tcp-${hostPort}`).waitFor();
    const ssh = page.getByTestId(`ssh-line-${hostPort}`);
    expect(await ssh.textContent()).toBe(`ssh -p ${hostPort} 127.0.0.1`);
    await page.getByTestId('ssh-user').fill('debian');
    await page.locator(`[data-testid=ssh-line-${hostPort}]`, { hasText: `ssh -p ${hostPort} debian@127.0.0.1` }).waitFor();
    const fwds = await server.api<{ forwards: Array<{ protocol: string; hostPort: number; guestPort: number; hostAddress: string }> }>('GET', `/vms/${vmId}/forwards`);
    expect(fwds.body.forwards).toMatchObject([{ protocol: 'tcp', hostPort, guestPort: 22, hostAddress: '127.0.0.1' }]);
    await shot(page, '11-vm-network-section');
    // On a phone the section fits the screen (its tables scroll inside their card).
    const phone = await page.context().newPage();
    try {
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.goto(`${server.url}/vms/${vmId}`);
      await phone.getByTestId(`ssh-line-${hostPort}`).waitFor();
      expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    } finally {
      await phone.close();
    }

    // The same host port again: the server refuses (409 PORT_IN_USE) and the dialog says so.
    await page.getByTestId('forward-add-open').click();
    await page.getByTestId('add-forward-host-port').fill(String(hostPort));
    await page.getByTestId('add-forward-guest-port').fill('80');
    await page.getByTestId('add-forward-submit').click();
    await page.getByTestId('add-forward-error').waitFor();
    expect((await page.getByTestId('add-forward-error').textContent())?.length).toBeGreaterThan(3);
    await page.keyboard.press('Escape');

    await page.getByTestId(`forward-remove-tcp-${hostPort}`).click();
    await page.getByTestId('remove-forward-confirm').click();
    await page.getByTestId('forwards-empty').waitFor();
    expect((await server.api<{ forwards: unknown[] }>('GET', `/vms/${vmId}/forwards`)).body.forwards).toEqual([]);
  });

  it('the host dashboard (from the nav) shows CPU, memory and storage numbers', async () => {
    await page.goto(server.url + '/');
    await page.getByTestId('nav-host').click();
    await page.getByTestId('host-page').waitFor();
    const mem = page.getByTestId('host-memory-value');
    await mem.waitFor();
    expect(Number(await mem.getAttribute('data-total'))).toBeGreaterThan(0);
    expect(Number(await mem.getAttribute('data-available'))).toBeGreaterThan(0);
    expect(await mem.textContent()).toMatch(/\d.* used of \d/);
    // The CPU share needs two samples (one a second here); the page refreshes every 5 s.
    await page.waitForFunction(() => document.querySelector('[data-testid=host-cpu-value]')?.getAttribute('data-value') !== '', undefined, { timeout: 30_000 });
    expect(await page.getByTestId('host-cpu-value').textContent()).toMatch(/^\d+ % of \d+ cores$/);
    const roots = page.locator('[data-testid=host-storage-item][data-kind=storage-root]');
    expect(await roots.count()).toBeGreaterThan(0);
    expect(Number(await roots.first().getAttribute('data-free'))).toBeGreaterThan(0);
    expect(await page.getByTestId('host-vms-running').getAttribute('data-running')).toBe('0');
    await shot(page, '14-host-dashboard');
    expect(pageErrors).toEqual([]);
  });

  it('a running VM: the list shows its address with a copy button, a forward added live opens its host port and closes when removed', async () => {
    expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
    await page.goto(server.url + '/');
    const ip = page.getByTestId(`vm-ip-${VM}`);
    await ip.waitFor({ timeout: 20_000 });
    expect(await ip.locator('.mono').textContent()).toBe('10.0.2.15');
    await page.getByTestId(`vm-ip-copy-${VM}`).click();
    await page.waitForFunction(async () => (await navigator.clipboard.readText()) === '10.0.2.15');

    await page.goto(`${server.url}/vms/${vmId}`);
    await page.getByTestId('vm-address').filter({ hasText: '10.0.2.15' }).waitFor();
    const hostPort = await freePort();
    await page.getByTestId('forward-add-open').click();
    await page.getByTestId('add-forward-host-port').fill(String(hostPort));
    await page.getByTestId('add-forward-guest-port').fill('7');
    await page.getByTestId('add-forward-submit').click();
    await page.getByTestId(`vm-forward-tcp-${hostPort}`).waitFor();
    expect(await page.getByTestId(`ssh-line-${hostPort}`).count()).toBe(0); // not port 22
    // QEMU now listens on the host port (loopback only).
    const connects = () =>
      new Promise<boolean>((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port: hostPort }, () => { sock.destroy(); resolve(true); });
        sock.once('error', () => resolve(false));
      });
    expect(await connects()).toBe(true);
    await page.getByTestId(`forward-remove-tcp-${hostPort}`).click();
    await page.getByTestId('remove-forward-confirm').click();
    await page.getByTestId('forwards-empty').waitFor();
    await waitFor(async () => !(await connects()), 10_000, `port ${hostPort} closed after the forward was removed`);
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
  });
});
