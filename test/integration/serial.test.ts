/**
 * Serial console (issue 14) against a real guest: the test guest's shell on ttyS0, reached
 * through WS /api/vms/{id}/serial (tickets of kind serial). One booted guest for the whole file.
 */
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { READY_MARKER } from '../guest/index.js';
import { Receiver } from '../alerts/receiver.js';
import { TestServer, serialLog, startGuestServer, waitFor } from './harness.js';

let server: TestServer;
let isoPath: string;
let vmId: string;
const open: WebSocket[] = [];

/** A viewer: everything it got (the last 256 KiB, and the total count), and whether it was closed. */
interface Viewer {
  ws: WebSocket;
  text(): string;
  total: number;
  closed: boolean;
}

async function viewer(): Promise<Viewer> {
  const t = await server.api('POST', `/vms/${vmId}/console`, { kind: 'serial' });
  expect(t.status).toBe(200);
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/vms/${vmId}/serial?ticket=${t.body.ticket}`);
  open.push(ws);
  let kept = Buffer.alloc(0);
  const v: Viewer = { ws, text: () => kept.toString('latin1'), total: 0, closed: false };
  ws.on('message', (d: Buffer) => {
    v.total += d.length;
    kept = Buffer.concat([kept, d]);
    if (kept.length > 256 * 1024) kept = kept.subarray(-256 * 1024);
  });
  ws.on('close', () => (v.closed = true));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`serial WebSocket refused: ${res.statusCode}`)));
  });
  return v;
}

beforeAll(async () => {
  ({ server, isoPath } = await startGuestServer());
  vmId = (await server.api('POST', '/vms', { name: 'serial-guest', cpus: 1, memory: 256 })).body.vm.id;
  await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath });
  expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
  // serial.log is written by the server from the serial socket.
  await waitFor(() => serialLog(server.dataDir, vmId).includes(READY_MARKER), 90_000, 'guest READY in serial.log');
}, 120_000);

afterAll(async () => {
  for (const ws of open) ws.terminate();
  if (server && vmId) await server.api('POST', `/vms/${vmId}/stop`).catch(() => undefined);
  await server?.dispose();
});

describe('serial console on a real guest', () => {
  it('typed input reaches the guest shell and its output comes back; a second viewer starts with earlier output and sees the same', async () => {
    const a = await viewer();
    await waitFor(() => a.text().includes(READY_MARKER), 10_000, 'the backlog with READY');
    a.ws.send(Buffer.from('\recho SERIAL_$((6*7))\r'));
    await waitFor(() => a.text().includes('SERIAL_42'), 30_000, 'SERIAL_42 from the guest');

    const b = await viewer();
    await waitFor(() => b.text().includes('SERIAL_42'), 10_000, 'the second viewer backlog');
    expect(b.text()).toContain(READY_MARKER);
    b.ws.send('echo SECOND_$((5*5))\r'); // a text frame is input too
    await waitFor(() => a.text().includes('SECOND_25') && b.text().includes('SECOND_25'), 30_000, 'SECOND_25 on both viewers');

    const tail = await server.api('GET', `/vms/${vmId}/serial/log?tail=20`);
    expect(tail.status).toBe(200);
    expect(String(tail.body)).toContain('SECOND_25');
    expect(String(tail.body).split('\n').length).toBeLessThanOrEqual(21);
    a.ws.close();
    b.ws.close();
  }, 90_000);

  it('a viewer that never reads is cut off at a bound while a reading viewer gets all the output', async () => {
    const reader = await viewer();
    const stalled = await viewer();
    (stalled.ws as unknown as { _socket: net.Socket })._socket.pause(); // never reads again (until the end)
    // More than the loopback socket buffers of the kernel plus the server's 1 MiB bound (a stalled viewer was
    // measured to be sent 2.4 MB before it was cut off).
    const FLOOD = 3_500_000;
    const before = reader.total;
    reader.ws.send(`head -c ${FLOOD} /dev/zero | tr '\\0' x; echo; echo FLOOD_$((1+1))_DONE\r`);
    await waitFor(() => reader.text().includes('FLOOD_2_DONE'), 120_000, 'the end of the flood on the reading viewer');
    expect(reader.total - before).toBeGreaterThan(FLOOD);
    // Now read what the stalled viewer was sent: the server stopped at its bound and closed it.
    (stalled.ws as unknown as { _socket: net.Socket })._socket.resume();
    await waitFor(() => stalled.closed, 30_000, 'the stalled viewer closed');
    console.log(`serial flood: ${FLOOD} bytes; the stalled viewer was sent ${stalled.total} before it was cut off`);
    expect(stalled.total).toBeLessThan(FLOOD);
    expect(stalled.text()).not.toContain('FLOOD_2_DONE');
    reader.ws.close();
  }, 180_000);

  it('after a server SIGKILL and restart, the adopted VM serial console works again', async () => {
    await server.kill('SIGKILL');
    server = await new TestServer(server.dataDir).start();
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm.status).toBe('running');
    const c = await viewer();
    await waitFor(() => c.text().includes('FLOOD_2_DONE'), 10_000, 'the backlog from the log after the restart');
    c.ws.send('echo AFTER_$((3*3))\r');
    await waitFor(() => c.text().includes('AFTER_9'), 30_000, 'AFTER_9 after the restart');
    expect(serialLog(server.dataDir, vmId)).toContain('AFTER_9');
    c.ws.close();
  }, 120_000);

  // Last: the guest does not survive it.
  it('a guest kernel panic reaches QEMU through the pvpanic device and is told as vm.crashed (alerts, issue 14)', async () => {
    const rx = await new Receiver().start();
    try {
      const hook = await server.api('POST', '/notifications', { name: 'panic', kind: 'webhook', url: `${rx.base}/panic`, events: ['vm.crashed'] });
      expect(hook.status).toBe(201);
      const c = await viewer();
      c.ws.send('echo c > /proc/sysrq-trigger\r');
      await rx.until(() => rx.on('/panic').length >= 1, 60_000);
      expect(rx.on('/panic')[0].json).toMatchObject({ event: 'vm.crashed', vm: { id: vmId, name: 'serial-guest' }, message: /guest panicked/ });
      expect(serialLog(server.dataDir, vmId)).toMatch(/Kernel panic/);
      c.ws.close();
    } finally {
      await rx.close();
    }
  }, 90_000);
});
