/**
 * Serial console (issue 14): GET /api/vms/{id}/serial/log, console tickets of kind serial, and
 * WS /api/vms/{id}/serial over a loopback socket (the fake runtime's serial port).
 */
import { ConsoleTicket, type VmEnvelope } from '@qemu-manager/contract';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';
import { PASSWORD } from './auth.js';

function until(cond: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - started > 10_000) {
        clearInterval(t);
        reject(new Error(`gave up waiting for ${what}`));
      }
    }, 5);
  });
}

/** Opens a WebSocket; resolves with it once open, or with the HTTP status that refused it. */
function openWs(url: string): Promise<{ ws: WebSocket; received: Buffer[] } | { status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const received: Buffer[] = [];
    ws.on('message', (d: Buffer) => received.push(d));
    ws.once('open', () => resolve({ ws, received }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', () => undefined);
  });
}

export function serialSuite(): void {
  describe('serial console (issue 14)', () => {
    let s: InProcessServer;
    let port: number;
    let cookie: string;
    let vmId: string;
    let other: string;
    beforeAll(async () => {
      s = await startInProcess({ env: { AUTH: 'required', ADMIN_PASSWORD: PASSWORD } });
      await s.app.listen({ host: '127.0.0.1', port: 0 });
      port = (s.app.server.address() as net.AddressInfo).port;
      const login = await s.api('POST', '/auth/login', { password: PASSWORD });
      cookie = String(login.headers['set-cookie']).split(';')[0]!;
      vmId = ((await s.api('POST', '/vms', { name: 'serial-1', cpus: 1, memory: 64 }, { cookie })).body as VmEnvelope).vm.id;
      other = ((await s.api('POST', '/vms', { name: 'serial-2', cpus: 1, memory: 64 }, { cookie })).body as VmEnvelope).vm.id;
    });
    afterAll(async () => {
      await s.close();
    });
    const ticket = async (id: string, kind?: string) => {
      const r = await s.api('POST', `/vms/${id}/console`, kind === undefined ? undefined : { kind }, { cookie });
      expect(r.status).toBe(200);
      expectShape(ConsoleTicket, r.body);
      return (r.body as ConsoleTicket).ticket;
    };
    const wsUrl = (id: string, t: string, kind: 'serial' | 'vnc' = 'serial') =>
      kind === 'serial' ? `ws://127.0.0.1:${port}/api/vms/${id}/serial?ticket=${t}` : `ws://127.0.0.1:${port}/api/vnc/${id}?ticket=${t}`;

    it('GET serial/log gives the last N lines as text; a bad tail is 400, an unknown VM 404', async () => {
      s.runtime.serialLogs.set(vmId, 'one\ntwo\nthree\nfour\n');
      const r = await s.inject({ method: 'GET', url: `/api/vms/${vmId}/serial/log?tail=2`, headers: { cookie } });
      expect(r.status).toBe(200);
      expect(String(r.headers['content-type'])).toMatch(/^text\/plain/);
      expect(r.body).toBe('three\nfour\n');
      const all = await s.inject({ method: 'GET', url: `/api/vms/${vmId}/serial/log`, headers: { cookie } });
      expect(all.body).toBe('one\ntwo\nthree\nfour\n');
      const none = await s.inject({ method: 'GET', url: `/api/vms/${other}/serial/log?tail=5`, headers: { cookie } });
      expect([none.status, none.body]).toEqual([200, '']);
      for (const bad of ['0', '-1', 'ten', '10001', '1e3']) {
        expectError(await s.api('GET', `/vms/${vmId}/serial/log?tail=${bad}`, undefined, { cookie }), 'VALIDATION', 400, /^querystring\.tail /);
      }
      expectError(await s.api('GET', `/vms/${vmId}/serial/log?lines=3`, undefined, { cookie }), 'VALIDATION', 400, /^querystring /);
      expectError(await s.api('GET', '/vms/nope/serial/log?tail=3', undefined, { cookie }), 'VM_NOT_FOUND', 404, /nope/);
      expectError(await s.api('GET', `/vms/${vmId}/serial/log`), 'UNAUTHORIZED', 401, 'Log in or send an API token');
    });

    it('a serial ticket is refused for a stopped VM and for an unknown kind; VNC stays the default', async () => {
      expectError(await s.api('POST', `/vms/${vmId}/console`, { kind: 'serial' }, { cookie }), 'VM_NOT_RUNNING', 409, 'VM is stopped; its console is available while it runs');
      expectError(await s.api('POST', `/vms/${vmId}/console`, { kind: 'spice' }, { cookie }), 'VALIDATION', 400, /^body\.kind /);
      expectError(await s.api('POST', `/vms/${vmId}/console`, { kind: 'serial', extra: 1 }, { cookie }), 'VALIDATION', 400, /^body /);
      expect((await s.api('POST', `/vms/${vmId}/start`, undefined, { cookie })).status).toBe(200);
      expect((await s.api('POST', `/vms/${other}/start`, undefined, { cookie })).status).toBe(200);
      await ticket(vmId); // no body: a VNC ticket, as before
      await ticket(vmId, 'vnc');
      await ticket(vmId, 'serial');
    });

    it('WS serial: wrong kind, wrong VM, reused or missing tickets are 401; viewers get the backlog, live output, and their input reaches the guest', async () => {
      const portOf = () => s.runtime.serial(vmId)!;
      portOf().output('early boot\n');
      // A VNC ticket does not open the serial console, nor a serial ticket VNC, nor one for another VM.
      for (const [t, kind, id] of [
        [await ticket(vmId, 'vnc'), 'serial', vmId],
        [await ticket(vmId, 'serial'), 'vnc', vmId],
        [await ticket(other, 'serial'), 'serial', vmId],
        ['', 'serial', vmId],
      ] as const) {
        const r = await openWs(wsUrl(id, t, kind));
        expect(r).toMatchObject({ status: 401 });
        expect(JSON.parse((r as { body: string }).body)).toMatchObject({ code: 'UNAUTHORIZED' });
      }
      const t1 = await ticket(vmId, 'serial');
      const a = await openWs(wsUrl(vmId, t1));
      if (!('ws' in a)) throw new Error(`refused: ${a.status}`);
      expect(await openWs(wsUrl(vmId, t1))).toMatchObject({ status: 401 }); // one connection per ticket
      await until(() => Buffer.concat(a.received).toString() === 'early boot\n', 'the backlog');
      portOf().output('login: ');
      const b = await openWs(wsUrl(vmId, await ticket(vmId, 'serial')));
      if (!('ws' in b)) throw new Error(`refused: ${b.status}`);
      await until(() => Buffer.concat(b.received).toString() === 'early boot\nlogin: ', 'the second viewer backlog');
      portOf().output('root\n');
      await until(() => Buffer.concat(a.received).toString().endsWith('login: root\n') && Buffer.concat(b.received).toString().endsWith('root\n'), 'both viewers');
      a.ws.send(Buffer.from('echo hi\r'));
      b.ws.send('ls\r'); // text frames are input too (UTF-8)
      await until(() => Buffer.concat(portOf().input).toString().length === 'echo hi\rls\r'.length, 'the input');
      expect(Buffer.concat(portOf().input).toString()).toBe('echo hi\rls\r');
      // The VM stops: its viewers are closed.
      const closed = new Promise<number>((r) => a.ws.once('close', (code: number) => r(code)));
      expect((await s.api('POST', `/vms/${vmId}/stop`, undefined, { cookie })).status).toBe(200);
      s.runtime.serial(vmId); // the fake's port ends once the VM is gone
      expect(await closed).toBe(1000);
      b.ws.terminate();
      const r = await openWs(wsUrl(vmId, 'bogus'));
      expect(r).toMatchObject({ status: 401 });
    });

    it('a viewer that never reads is cut off at a bound; the others keep receiving everything', async () => {
      const serialPort = s.runtime.serial(other)!;
      const slow = await openWs(wsUrl(other, await ticket(other, 'serial')));
      const fast = await openWs(wsUrl(other, await ticket(other, 'serial')));
      if (!('ws' in slow) || !('ws' in fast)) throw new Error('refused');
      await until(() => serialPort.viewers === 2, 'two viewers');
      // The slow one stops reading from its socket altogether.
      (slow.ws as unknown as { _socket: net.Socket })._socket.pause();
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let pushed = 0;
      let fastGot = 0;
      fast.ws.on('message', (d: Buffer) => (fastGot += d.length));
      // Far more than the kernel's socket buffers plus the server's bound, in steps the fast viewer keeps up with.
      while (serialPort.viewers === 2 && pushed < 64 * 1024 * 1024) {
        serialPort.output(chunk);
        pushed += chunk.length;
        const target = pushed;
        await until(() => fastGot >= target, 'the fast viewer');
      }
      expect(serialPort.viewers).toBe(1);
      expect(pushed).toBeLessThan(64 * 1024 * 1024);
      serialPort.output('still here\n');
      await until(() => fastGot === pushed + 11, 'the fast viewer after the cut');
      fast.ws.terminate();
      slow.ws.terminate();
    });
  });
}
