import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QmpClient } from './client.js';
import type { QmpEvent } from './client.js';
import {
  QmpClosedError,
  QmpCommandError,
  QmpConnectError,
  QmpError,
  QmpTimeoutError,
} from './errors.js';

const GREETING = {
  QMP: {
    version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'fake' },
    capabilities: ['oob'],
  },
};

type Msg = { execute: string; id?: string; arguments?: Record<string, unknown> };
type Handler = (msg: Msg, sock: net.Socket) => void;

/** Fake QMP server: sends the greeting, answers qmp_capabilities, delegates everything else. */
class FakeQmp {
  readonly server: net.Server;
  readonly sockets: net.Socket[] = [];
  readonly received: Msg[] = [];
  handler: Handler = (msg, sock) => reply(sock, { return: {}, id: msg.id });
  sendGreeting = true;

  constructor(readonly socketPath: string) {
    this.server = net.createServer((sock) => {
      this.sockets.push(sock);
      sock.on('error', () => {});
      if (this.sendGreeting) reply(sock, GREETING);
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const msg = JSON.parse(buf.slice(0, nl)) as Msg;
          buf = buf.slice(nl + 1);
          this.received.push(msg);
          if (msg.execute === 'qmp_capabilities') reply(sock, { return: {}, id: msg.id });
          else this.handler(msg, sock);
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function reply(sock: net.Socket, obj: unknown): void {
  sock.write(`${JSON.stringify(obj)}\r\n`);
}

let dir: string;
let fake: FakeQmp;
const clients: QmpClient[] = [];

async function connect(opts?: { timeoutMs?: number }): Promise<QmpClient> {
  const c = await QmpClient.connect(fake.socketPath, opts);
  clients.push(c);
  return c;
}

describe('QmpClient against a fake server', () => {
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'qmp-'));
    fake = new FakeQmp(path.join(dir, 'q.sock'));
    await fake.listen();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('performs the greeting + qmp_capabilities handshake', async () => {
    const c = await connect();
    expect(c.greeting.QMP.version.qemu.major).toBe(7);
    expect(c.greeting.QMP.capabilities).toEqual(['oob']);
    expect(fake.received).toHaveLength(1);
    expect(fake.received[0]?.execute).toBe('qmp_capabilities');
    expect(typeof fake.received[0]?.id).toBe('string');
    expect(c.closed).toBe(false);
  });

  it('execute resolves the return value and sends arguments', async () => {
    fake.handler = (msg, sock) => reply(sock, { return: { echo: msg.arguments }, id: msg.id });
    const c = await connect();
    await expect(c.execute('query-foo', { a: 1 })).resolves.toEqual({ echo: { a: 1 } });
    const ids = fake.received.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('rejects with QmpCommandError carrying class and desc', async () => {
    fake.handler = (msg, sock) =>
      reply(sock, { error: { class: 'CommandNotFound', desc: 'nope' }, id: msg.id });
    const c = await connect();
    const err = await c.execute('bogus').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpCommandError);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ qmpClass: 'CommandNotFound', desc: 'nope', message: 'nope' });
  });

  it('matches out-of-order responses by id', async () => {
    const held: Msg[] = [];
    fake.handler = (msg, sock) => {
      held.push(msg);
      if (held.length === 3) {
        for (const m of held.reverse()) reply(sock, { return: m.execute, id: m.id });
      }
    };
    const c = await connect();
    const results = await Promise.all([c.execute('a'), c.execute('b'), c.execute('c')]);
    expect(results).toEqual(['a', 'b', 'c']);
  });

  it('emits events', async () => {
    fake.handler = (msg, sock) => {
      reply(sock, {
        event: 'STOP',
        timestamp: { seconds: 1, microseconds: 2 },
      });
      reply(sock, { event: 'BLOCK_JOB_READY', data: { device: 'd0' } });
      reply(sock, { return: {}, id: msg.id });
    };
    const c = await connect();
    const events: QmpEvent[] = [];
    c.on('event', (e) => events.push(e));
    await c.execute('stop');
    expect(events).toEqual([
      { event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } },
      { event: 'BLOCK_JOB_READY', data: { device: 'd0' } },
    ]);
  });

  it('handles split and merged chunks, blank and malformed lines', async () => {
    fake.handler = (msg, sock) => {
      const wire =
        `\r\n{"event":"RESUME"}\r\nnot json\r\n[1,2]\r\n` +
        `${JSON.stringify({ return: { v: 'ünïcødé' }, id: msg.id })}\r\n`;
      const bytes = Buffer.from(wire, 'utf8');
      // Send byte by byte (splitting multi-byte characters too).
      for (let i = 0; i < bytes.length; i++) sock.write(bytes.subarray(i, i + 1));
    };
    const c = await connect();
    const events: string[] = [];
    c.on('event', (e) => events.push(e.event));
    await expect(c.execute('x')).resolves.toEqual({ v: 'ünïcødé' });
    expect(events).toEqual(['RESUME']);

    // Several answers in one chunk.
    fake.handler = (msg, sock) => {
      const held = fake.received.filter((m) => m.execute === 'y');
      if (held.length < 2) return;
      sock.write(held.map((m) => JSON.stringify({ return: m.id, id: m.id }) + '\r\n').join(''));
    };
    const [r1, r2] = await Promise.all([c.execute('y'), c.execute('y')]);
    expect(r1).not.toBe(r2);
    expect(c.closed).toBe(false);
  });

  it('close() rejects pending commands and emits close exactly once', async () => {
    fake.handler = () => {};
    const c = await connect();
    let closes = 0;
    c.on('close', () => closes++);
    const p1 = c.execute('hang');
    const p2 = c.execute('hang');
    c.close();
    c.close();
    await expect(p1).rejects.toBeInstanceOf(QmpClosedError);
    await expect(p2).rejects.toBeInstanceOf(QmpClosedError);
    await expect(c.execute('after')).rejects.toBeInstanceOf(QmpClosedError);
    expect(c.closed).toBe(true);
    await expect(c.waitClosed()).resolves.toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(closes).toBe(1);
  });

  it('peer hang-up rejects pending commands and emits close once', async () => {
    fake.handler = (_msg, sock) => sock.end();
    const c = await connect();
    let closes = 0;
    c.on('close', () => closes++);
    expect(await c.waitClosed(5)).toBe(false);
    await expect(c.execute('quit')).rejects.toBeInstanceOf(QmpClosedError);
    await expect(c.waitClosed(1000)).resolves.toBe(true);
    expect(c.closed).toBe(true);
    expect(closes).toBe(1);
  });

  it('rejects fast with QmpConnectError when the socket does not exist', async () => {
    const t0 = Date.now();
    const err = await QmpClient.connect(path.join(dir, 'missing.sock')).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect((err as QmpConnectError).cause).toMatchObject({ code: 'ENOENT' });
  });

  it('rejects with QmpConnectError when no greeting arrives in time', async () => {
    fake.sendGreeting = false;
    const err = await QmpClient.connect(fake.socketPath, { timeoutMs: 100 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QmpConnectError);
    expect((err as QmpConnectError).cause).toBeInstanceOf(QmpTimeoutError);
    // The server side sees the socket go away.
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.sockets[0]?.destroyed || fake.sockets[0]?.readableEnded).toBe(true);
  });

  it('times out a command and ignores its late answer', async () => {
    let late: (() => void) | undefined;
    fake.handler = (msg, sock) => {
      if (msg.execute === 'slow') late = () => reply(sock, { return: 'late', id: msg.id });
      else reply(sock, { return: 'ok', id: msg.id });
    };
    const c = await connect();
    await expect(c.execute('slow', undefined, { timeoutMs: 50 })).rejects.toBeInstanceOf(
      QmpTimeoutError,
    );
    late?.();
    await expect(c.execute('fast')).resolves.toBe('ok');
    expect(c.closed).toBe(false);
  });
});

describe('QmpClient against real QEMU', () => {
  let qdir: string | undefined;

  afterAll(() => {
    if (!qdir) return;
    try {
      const pid = Number(readFileSync(path.join(qdir, 'pid'), 'utf8').trim());
      if (pid > 0) {
        try {
          process.kill(pid, 0);
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } catch {
      // no pidfile
    }
    rmSync(qdir, { recursive: true, force: true });
  });

  it('query-status, cont, quit', async () => {
    qdir = mkdtempSync(path.join(os.tmpdir(), 'qmpq-'));
    const sock = path.join(qdir, 'q.sock');
    const child = spawn(
      'qemu-system-x86_64',
      [
        '-accel', 'tcg', '-machine', 'q35', '-nodefaults', '-display', 'none', '-m', '64', '-S',
        '-qmp', `unix:${sock},server=on,wait=off`,
        '-daemonize', '-pidfile', path.join(qdir, 'pid'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    expect(code, stderr).toBe(0);

    const c = await QmpClient.connect(sock);
    clients.push(c);
    expect(c.greeting.QMP.version.qemu.major).toBeGreaterThanOrEqual(7);

    const before = await c.execute<{ status: string; running: boolean }>('query-status');
    expect(['prelaunch', 'paused']).toContain(before.status);
    expect(before.running).toBe(false);

    const err = await c.execute('no-such-command').catch((e: unknown) => e);
    expect(err).toMatchObject({ qmpClass: 'CommandNotFound' });

    const events: string[] = [];
    c.on('event', (e) => events.push(e.event));
    await c.execute('cont');
    const after = await c.execute<{ status: string; running: boolean }>('query-status');
    expect(after).toMatchObject({ status: 'running', running: true });

    let closes = 0;
    c.on('close', () => closes++);
    await c.execute('quit').catch(() => {}); // QEMU may close before or after answering
    expect(await c.waitClosed(5000)).toBe(true);
    expect(closes).toBe(1);
    expect(events).toContain('RESUME');
  }, 30_000);
});
