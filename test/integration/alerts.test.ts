/**
 * Alerts (issue 14) on real QEMU: an empty VM (SeaBIOS, no guest) whose QEMU is killed by pid with
 * SIGKILL is told to a webhook receiver on 127.0.0.1 (vm.crashed); an endpoint that answers 500
 * twice gets three attempts; a stop through the API sends nothing. One server, one VM, restarted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Receiver } from '../alerts/receiver.js';
import { makeDataDir, qemuPidsOf, TestServer, waitFor } from './harness.js';

let server: TestServer;
let rx: Receiver;
let vmId: string;

beforeAll(async () => {
  rx = await new Receiver().start();
  server = await new TestServer(makeDataDir(), { NOTIFY_RETRY_BASE_MS: '50' }).start();
  const r = await server.api('POST', '/vms', { name: 'alert-vm', cpus: 1, memory: 64 });
  expect(r.status).toBe(201);
  vmId = r.body.vm.id;
});

afterAll(async () => {
  await server?.dispose();
  await rx?.close();
});

const status = async () => (await server.api('GET', `/vms/${vmId}`)).body.vm.status as string;

async function startedPid(): Promise<number> {
  const r = await server.api('POST', `/vms/${vmId}/start`);
  expect(r.status).toBe(200);
  const pid = r.body.vm.pid as number;
  expect(qemuPidsOf(server.dataDir)).toContain(pid);
  return pid;
}

describe('alerts on real QEMU', () => {
  it('a QEMU killed with SIGKILL is told as vm.crashed; 500, 500, 200 is three attempts', async () => {
    rx.script('/flaky', [500, 500]);
    for (const [name, path] of [
      ['hook', '/hook'],
      ['flaky', '/flaky'],
    ]) {
      const r = await server.api('POST', '/notifications', { name, kind: 'webhook', url: `${rx.base}${path}`, events: ['vm.crashed'] });
      expect(r.status).toBe(201);
    }
    const pid = await startedPid();
    process.kill(pid, 'SIGKILL');
    await rx.until(() => rx.on('/hook').length >= 1 && rx.on('/flaky').length >= 3, 60_000);
    expect(rx.on('/hook')).toHaveLength(1);
    expect(rx.on('/hook')[0].json).toMatchObject({ event: 'vm.crashed', vm: { id: vmId, name: 'alert-vm' }, message: /QEMU process exited/ });
    expect(rx.on('/flaky').map((g) => g.json.event)).toEqual(['vm.crashed', 'vm.crashed', 'vm.crashed']);
    await waitFor(async () => (await status()) === 'stopped', 30_000, 'VM stopped');
    const list = (await server.api('GET', '/notifications')).body.notifications as Array<{ id: string; name: string }>;
    const flaky = list.find((n) => n.name === 'flaky')!;
    let deliveries: any[] = [];
    await waitFor(async () => (deliveries = (await server.api('GET', `/notifications/${flaky.id}/deliveries`)).body.deliveries).length === 3, 30_000, 'three attempts logged');
    expect(deliveries.map((d) => [d.attempt, d.status, d.ok])).toEqual([
      [3, 200, true],
      [2, 500, false],
      [1, 500, false],
    ]);
  });

  it('a QEMU ended by SIGTERM from outside is a crash too (QEMU reports SHUTDOWN, reason host-signal)', async () => {
    const before = rx.on('/hook').length;
    const pid = await startedPid();
    process.kill(pid, 'SIGTERM');
    await rx.until(() => rx.on('/hook').length > before, 60_000);
    await waitFor(async () => (await status()) === 'stopped', 30_000, 'VM stopped');
    expect(rx.on('/hook').slice(before).map((g) => [g.json.event, g.json.vm.id])).toEqual([['vm.crashed', vmId]]);
  });

  it('a stop through the API sends nothing', async () => {
    const before = rx.on('/hook').length;
    await startedPid();
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    expect(await status()).toBe('stopped');
    expect(qemuPidsOf(server.dataDir)).toEqual([]);
    // a marker through the same queue: a crash after the stop; a message about the stop would come first
    const pid = await startedPid();
    process.kill(pid, 'SIGKILL');
    await rx.until(() => rx.on('/hook').length > before, 60_000);
    await waitFor(async () => (await status()) === 'stopped', 30_000, 'VM stopped');
    expect(rx.on('/hook').slice(before).map((g) => g.json.event)).toEqual(['vm.crashed']);
  });
});
