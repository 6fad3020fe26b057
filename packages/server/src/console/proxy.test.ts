import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { WebSocket } from 'ws';
import { createVncProxy } from './proxy.js';
import type { VncProxy, VncTarget } from './proxy.js';

const BANNER = 'RFB 003.008\n';
const VM = randomUUID();

let vnc: net.Server;
let vncPort: number;
let vncSockets: net.Socket[];
let onVnc: (sock: net.Socket) => void;
let http1: http.Server;
let httpPort: number;
let proxy: VncProxy;
let resolveTarget: (vmId: string) => Promise<VncTarget | null> | VncTarget | null;
let resolved: string[];
const clients: WebSocket[] = [];

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeEach(async () => {
  vncSockets = [];
  resolved = [];
  onVnc = (sock) => {
    sock.write(BANNER);
    sock.pipe(sock);
  };
  vnc = net.createServer((sock) => {
    vncSockets.push(sock);
    sock.on('error', () => {});
    onVnc(sock);
  });
  vnc.listen(0, '127.0.0.1');
  await once(vnc, 'listening');
  vncPort = (vnc.address() as AddressInfo).port;

  resolveTarget = (id) => (id === VM ? { host: '127.0.0.1', port: vncPort } : null);
  proxy = createVncProxy({
    resolveTarget: (id) => {
      resolved.push(id);
      return resolveTarget(id);
    },
  });
  http1 = http.createServer((_req, res) => res.writeHead(404).end());
  http1.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    if (!proxy.handleUpgrade(req, socket, head)) socket.destroy();
  });
  http1.listen(0, '127.0.0.1');
  await once(http1, 'listening');
  httpPort = (http1.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  proxy.close();
  for (const s of vncSockets) s.destroy();
  http1.closeAllConnections();
  await Promise.all([
    new Promise((r) => http1.close(r)),
    new Promise((r) => vnc.close(r)),
  ]);
});

function open(path = `/api/vnc/${VM}`, protocols: string[] = ['binary']): WebSocket {
  const ws = new WebSocket(`ws://127.0.0.1:${httpPort}${path}`, protocols);
  ws.on('error', () => {});
  clients.push(ws);
  return ws;
}

function nextMessage(ws: WebSocket): Promise<Buffer> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
}

/** Connects expecting an HTTP error instead of an upgrade; returns status and parsed body. */
async function expectHttpError(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const ws = open(path);
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  let text = '';
  for await (const chunk of res) text += String(chunk);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return { status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> };
}

describe('createVncProxy', () => {
  it('delivers the RFB banner and negotiates the binary subprotocol', async () => {
    const ws = open();
    const first = nextMessage(ws);
    await once(ws, 'open');
    expect(ws.protocol).toBe('binary');
    expect((await first).toString()).toBe(BANNER);
    expect(proxy.sessions).toBe(1);
    expect(resolved).toEqual([VM]);
  });

  it('picks the first offered protocol when binary is not offered, none if none offered', async () => {
    const a = open(undefined, ['base64', 'other']);
    await once(a, 'open');
    expect(a.protocol).toBe('base64');
    const b = open(undefined, []);
    await once(b, 'open');
    expect(b.protocol).toBe('');
  });

  it('echoes ping-pong messages', async () => {
    const ws = open();
    await nextMessage(ws);
    for (let i = 0; i < 50; i++) {
      const msg = Buffer.from(`ping ${i}`);
      const reply = nextMessage(ws);
      ws.send(msg);
      expect((await reply).equals(msg)).toBe(true);
    }
  });

  it('relays 20 MiB in order through the echo server', async () => {
    const total = 20 * 1024 * 1024;
    const data = randomBytes(total);
    const ws = open();
    await nextMessage(ws); // banner
    const hash = createHash('sha256');
    let got = 0;
    const done = new Promise<void>((resolve) => {
      ws.on('message', (d: Buffer) => {
        hash.update(d);
        got += d.length;
        if (got >= total) resolve();
      });
    });
    for (let off = 0; off < total; off += 65536) ws.send(data.subarray(off, off + 65536));
    await done;
    expect(got).toBe(total);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  }, 30_000);

  it('answers 409 VM_NOT_RUNNING with a JSON body when there is no target', async () => {
    const other = randomUUID();
    const { status, body } = await expectHttpError(`/api/vnc/${other}`);
    expect(status).toBe(409);
    expect(body).toMatchObject({ code: 'VM_NOT_RUNNING', error: expect.any(String) });
    expect(new Date(body.timestamp as string).toISOString()).toBe(body.timestamp);
    expect(resolved).toEqual([other]);
    expect(vncSockets).toHaveLength(0);
  });

  it('answers with the code (and its status from the error table) of an AppError thrown by resolveTarget', async () => {
    resolveTarget = () => {
      throw new AppError('VM_NOT_FOUND', 'no such VM');
    };
    const { status, body } = await expectHttpError(`/api/vnc/${VM}`);
    expect(status).toBe(404);
    expect(body).toMatchObject({ code: 'VM_NOT_FOUND', error: 'no such VM' });
  });

  it('answers 502 when the VNC server is unreachable', async () => {
    const tmp = net.createServer().listen(0, '127.0.0.1');
    await once(tmp, 'listening');
    const deadPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    resolveTarget = async () => ({ host: '127.0.0.1', port: deadPort });
    const { status, body } = await expectHttpError(`/api/vnc/${VM}`);
    expect(status).toBe(502);
    expect(body).toMatchObject({ code: 'QEMU_UNREACHABLE' });
    expect(proxy.sessions).toBe(0);
  });

  it('connects to a unix socket target', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-proxy-'));
    const sockPath = path.join(dir, 'vnc.sock');
    const unixSockets: net.Socket[] = [];
    const unix = net.createServer((sock) => {
      unixSockets.push(sock);
      sock.on('error', () => {});
      sock.write('RFB 003.008 unix\n');
      sock.pipe(sock);
    });
    unix.listen(sockPath);
    await once(unix, 'listening');
    try {
      resolveTarget = () => ({ path: sockPath });
      const ws = open();
      expect((await nextMessage(ws)).toString()).toBe('RFB 003.008 unix\n');
      expect(unixSockets).toHaveLength(1);
      expect(vncSockets).toHaveLength(0);
      const echoed = nextMessage(ws);
      ws.send(Buffer.from('ping'));
      expect((await echoed).toString()).toBe('ping');
    } finally {
      for (const c of clients.splice(0)) c.terminate();
      for (const s of unixSockets) s.destroy();
      await new Promise((r) => unix.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers 502 when the unix socket is missing', async () => {
    resolveTarget = () => ({ path: path.join(os.tmpdir(), `qm-none-${randomUUID()}.sock`) });
    const { status, body } = await expectHttpError(`/api/vnc/${VM}`);
    expect(status).toBe(502);
    expect(body).toMatchObject({ code: 'QEMU_UNREACHABLE' });
  });

  it('ignores the query string: the port always comes from resolveTarget', async () => {
    const ws = open(`/api/vnc/${VM}?port=22&host=example.com`);
    expect((await nextMessage(ws)).toString()).toBe(BANNER);
    expect(resolved).toEqual([VM]);
    expect(vncSockets).toHaveLength(1);
  });

  it('answers 400 to a malformed upgrade without resolving or dialing', async () => {
    const req = http.request({
      host: '127.0.0.1',
      port: httpPort,
      path: `/api/vnc/${VM}`,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket' }, // no Sec-WebSocket-Key
    });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    let text = '';
    for await (const chunk of res) text += String(chunk);
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(text)).toMatchObject({ code: 'BAD_REQUEST' });
    expect(resolved).toEqual([]);
    expect(vncSockets).toHaveLength(0);
  });

  it('drops the VNC connection if the client leaves during the upgrade', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    resolveTarget = async () => {
      await gate;
      return { host: '127.0.0.1', port: vncPort };
    };
    const ws = open();
    await until(() => resolved.length === 1);
    ws.terminate();
    await new Promise((r) => setTimeout(r, 20));
    release();
    // The half-closed upgrade socket is only noticed once read, so the proxy may dial; whatever it
    // opened must be torn down and no session may remain.
    await until(() => vncSockets.every((s) => s.destroyed));
    await until(() => proxy.sessions === 0);
  });

  it('returns false for paths it does not own', () => {
    for (const url of ['/api/vms', `/api/vnc/${VM}/x`, `/x/api/vnc/${VM}`]) {
      const req = { url, headers: {}, method: 'GET' } as IncomingMessage;
      expect(proxy.handleUpgrade(req, new net.Socket(), Buffer.alloc(0))).toBe(false);
    }
    expect(resolved).toEqual([]);
  });

  it('a slow WebSocket consumer backs up the VNC server instead of the proxy', async () => {
    let written = 0;
    let stalled = false;
    onVnc = (sock) => {
      const pump = (): void => {
        while (!sock.destroyed && written < 256 * 1024 * 1024) {
          const ok = sock.write(Buffer.alloc(65536, written & 0xff));
          written += 65536;
          if (!ok) {
            stalled = true;
            sock.once('drain', pump);
            return;
          }
        }
      };
      pump();
    };
    const ws = open();
    await once(ws, 'open');
    const clientSock = (ws as unknown as { _socket: net.Socket })._socket;
    clientSock.pause();
    let received = 0;
    ws.on('message', (d: Buffer) => (received += d.length));

    await until(() => stalled);
    await new Promise((r) => setTimeout(r, 300));
    const snapshot = written;
    await new Promise((r) => setTimeout(r, 200));
    expect(written).toBe(snapshot); // producer stays blocked
    expect(vncSockets[0]?.writableLength).toBeGreaterThan(0);
    // What left the VNC server but did not reach the client sits in kernel buffers plus at most
    // ~1 MiB (high-water mark) + a few chunks in the proxy; nowhere near the 256 MiB on offer.
    expect(written).toBeLessThan(64 * 1024 * 1024);

    clientSock.resume();
    await until(() => received > snapshot);
  });

  it('client close closes the VNC connection', async () => {
    const ws = open();
    await nextMessage(ws);
    const vncClosed = once(vncSockets[0], 'close');
    ws.close();
    await vncClosed;
    await until(() => proxy.sessions === 0);
  });

  it('VNC server close closes the WebSocket with 1000', async () => {
    const ws = open();
    await nextMessage(ws);
    const closed = once(ws, 'close');
    vncSockets[0].destroy();
    const [code] = (await closed) as [number];
    expect(code).toBe(1000);
    await until(() => proxy.sessions === 0);
  });

  it('close() terminates live sessions', async () => {
    const a = open();
    const b = open();
    await Promise.all([nextMessage(a), nextMessage(b)]);
    expect(proxy.sessions).toBe(2);
    const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
    proxy.close();
    await closed;
    await until(() => proxy.sessions === 0 && vncSockets.every((s) => s.destroyed));
  });
});
