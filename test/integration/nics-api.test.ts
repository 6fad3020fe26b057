/**
 * Networks (issue 11) through the API, user-mode NICs only (no host networking needed): the real
 * server boots the real test guest under TCG with its one `user` NIC; port forwards are added and
 * removed live and applied again at the next start; a second user NIC is hot-plugged and removed.
 * Every connection goes to 127.0.0.1. One VM for the file.
 *
 * Needs the domain and routes of issue 11 (POST/DELETE /api/vms/{id}/forwards and /nics).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_MARKER } from '../guest/index.js';
import { TestServer, freePort, holdPort, serialLog, startGuestServer, waitFor } from './harness.js';
import { marker, refused } from './guest-net.js';

let server: TestServer;
let isoPath: string;
let vmId: string;
let mac: string;

const serial = () => serialLog(server.dataDir, vmId);

const created = (status: number) => expect([200, 201]).toContain(status);

/** Starts the VM and waits for the guest (each start begins its serial log afresh). */
async function boot(): Promise<void> {
  expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
  await waitFor(() => serial().includes(READY_MARKER), 90_000, 'guest READY');
  await waitFor(() => serial().includes('TESTGUEST IP eth0 10.0.2.15'), 30_000, 'TESTGUEST IP eth0 10.0.2.15');
}

beforeAll(async () => {
  ({ server, isoPath } = await startGuestServer());
  const vm = (await server.api('POST', '/vms', { name: 'nics-api', cpus: 1, memory: 256 })).body.vm;
  vmId = vm.id;
  mac = vm.mac;
  await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath });
  await boot();
}, 150_000);

afterAll(async () => {
  if (server && vmId) await server.api('POST', `/vms/${vmId}/stop`).catch(() => undefined);
  await server?.dispose();
});

describe('user-mode networking through the API (issue 11)', () => {
  it('a new VM has one user NIC, and its address is shown', async () => {
    const vm = (await server.api('GET', `/vms/${vmId}`)).body.vm;
    expect(vm.nics).toHaveLength(1);
    expect(vm.nics[0]).toMatchObject({ network: 'user', mac, slot: 0, ip: '10.0.2.15' });
    expect(vm.addresses).toContainEqual(expect.objectContaining({ nic: vm.nics[0].id, ip: '10.0.2.15', source: 'user' }));
  });

  it('a forward added live serves the guest\'s marker on 127.0.0.1; deleted live, the port closes', async () => {
    const port = await freePort();
    const r = await server.api('POST', `/vms/${vmId}/forwards`, { protocol: 'tcp', hostPort: port, guestPort: 80 });
    created(r.status);
    const fwd = r.body.forward ?? r.body;
    expect(fwd).toMatchObject({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: port, guestPort: 80 });
    expect(await marker(port)).toContain(`TESTGUEST_HTTP ${mac}`);
    const list = await server.api('GET', `/vms/${vmId}/forwards`);
    expect(list.body.forwards.map((f: { id: string }) => f.id)).toContain(fwd.id);
    expect((await server.api('DELETE', `/vms/${vmId}/forwards/${fwd.id}`)).status).toBeLessThan(300);
    expect(await refused(port)).toBe(true);
  }, 60_000);

  it('a host port in use is 409 PORT_IN_USE; port 0 and 65536 are 400; nothing is added', async () => {
    const held = await freePort();
    const blocker = await holdPort(held);
    try {
      const r = await server.api('POST', `/vms/${vmId}/forwards`, { protocol: 'tcp', hostPort: held, guestPort: 80 });
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('PORT_IN_USE');
    } finally {
      blocker.close();
    }
    for (const hostPort of [0, 65536]) {
      const r = await server.api('POST', `/vms/${vmId}/forwards`, { protocol: 'tcp', hostPort, guestPort: 80 });
      expect(r.status).toBe(400);
    }
    expect((await server.api('GET', `/vms/${vmId}/forwards`)).body.forwards).toEqual([]);
  }, 30_000);

  it('hot-plug: a second user NIC appears in the guest with its own address, and goes again', async () => {
    const from = serial().length;
    const r = await server.api('POST', `/vms/${vmId}/nics`, { network: 'user', model: 'rtl8139' });
    created(r.status);
    const nic = r.body.nic ?? r.body;
    expect(nic).toMatchObject({ network: 'user', model: 'rtl8139', slot: 1 });
    await waitFor(() => serial().slice(from).includes('TESTGUEST IP eth1 10.0.2.15'), 40_000, 'TESTGUEST IP eth1 10.0.2.15');
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm.nics).toHaveLength(2);
    expect((await server.api('DELETE', `/vms/${vmId}/nics/${nic.id}`)).status).toBeLessThan(300);
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm.nics).toHaveLength(1);
  }, 90_000);

  it('forwards are applied again at the next start', async () => {
    const port = await freePort();
    created((await server.api('POST', `/vms/${vmId}/forwards`, { protocol: 'tcp', hostPort: port, guestPort: 7 })).status);
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    expect(await refused(port)).toBe(true);
    await boot();
    const echoed = await waitFor(
      () =>
        new Promise<string | null>((resolve) => {
          const sock = net.connect(port, '127.0.0.1');
          let data = '';
          sock.setTimeout(5000, () => (sock.destroy(), resolve(null)));
          sock.on('connect', () => sock.write('again\n'));
          sock.on('data', (d) => {
            data += d.toString('latin1');
            if (data.includes('\n')) {
              sock.destroy();
              resolve(data.trim());
            }
          });
          sock.on('error', () => resolve(null));
          sock.on('end', () => resolve(null));
        }),
      30_000,
      'the echo through the forward after a restart',
    );
    expect(echoed).toBe('again');
  }, 150_000);
});
