import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { relay } from './relay.js';
import type { RelayOptions } from './relay.js';

const BANNER = 'RFB 003.008\n';
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function pattern(offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = (offset + i) % 251;
  return buf;
}

function checkPattern(buf: Buffer, offset: number): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== (offset + i) % 251) return false;
  return true;
}

interface Setup {
  client: WebSocket;
  server: Promise<{ ws: WebSocket; tcp: net.Socket }>;
  vncSockets: net.Socket[];
  closes: string[];
}

/** fake VNC TCP server ← relay → ws server ← ws client */
async function setup(onVnc: (sock: net.Socket) => void, opts: RelayOptions = {}): Promise<Setup> {
  const vncSockets: net.Socket[] = [];
  const vnc = net.createServer((sock) => {
    vncSockets.push(sock);
    sock.on('error', () => {});
    onVnc(sock);
  });
  vnc.listen(0, '127.0.0.1');
  await once(vnc, 'listening');
  const vncPort = (vnc.address() as AddressInfo).port;
  cleanups.push(() => new Promise((r) => vnc.close(r)));
  cleanups.push(() => vncSockets.forEach((s) => s.destroy()));

  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  cleanups.push(() => new Promise((r) => wss.close(r)));
  cleanups.push(() => wss.clients.forEach((c) => c.terminate()));

  const closes: string[] = [];
  const server = new Promise<{ ws: WebSocket; tcp: net.Socket }>((resolve) => {
    wss.on('connection', (ws) => {
      const tcp = net.connect(vncPort, '127.0.0.1');
      tcp.once('connect', () => {
        relay(ws, tcp, { ...opts, onClose: (r) => closes.push(r) });
        resolve({ ws, tcp });
      });
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`);
  client.on('error', () => {});
  cleanups.push(() => client.terminate());
  await once(client, 'open');
  return { client, server, vncSockets, closes };
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

function nextMessage(ws: WebSocket): Promise<Buffer> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
}

describe('relay', () => {
  it('relays both directions and sets no-delay', async () => {
    const { client, server } = await setup((sock) => {
      sock.write(BANNER);
      sock.pipe(sock);
    });
    expect((await nextMessage(client)).toString()).toBe(BANNER);
    const { tcp } = await server;
    client.send(Buffer.from('ping'));
    expect((await nextMessage(client)).toString()).toBe('ping');
    // setNoDelay has no getter; the relay's call must at least not have broken the socket.
    expect(tcp.destroyed).toBe(false);
  });

  it('pauses TCP while the WebSocket is backed up, then resumes without loss', async () => {
    const hwm = 256 * 1024;
    let written = 0;
    let backedUp = false;
    const { client, server, vncSockets } = await setup((sock) => {
      const pump = (): void => {
        while (!sock.destroyed) {
          const ok = sock.write(pattern(written, 65536));
          written += 65536;
          if (!ok) {
            backedUp = true;
            sock.once('drain', pump);
            return;
          }
          if (written >= 64 * 1024 * 1024) return;
        }
      };
      pump();
    }, { highWaterMark: hwm });
    const { ws } = await server;
    // Record the server-side queue right after every send (its peak).
    let maxBuffered = 0;
    const send = ws.send.bind(ws) as (...a: unknown[]) => void;
    (ws as unknown as { send: (...a: unknown[]) => void }).send = (...a: unknown[]) => {
      send(...a);
      maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
    };
    // Slow consumer: stop reading on the client socket.
    const clientSock = (client as unknown as { _socket: net.Socket })._socket;
    clientSock.pause();

    const received: Buffer[] = [];
    let receivedBytes = 0;
    client.on('message', (d: Buffer) => {
      received.push(d);
      receivedBytes += d.length;
    });
    await new Promise((r) => setTimeout(r, 400));
    const writtenWhilePaused = written;
    await new Promise((r) => setTimeout(r, 200));

    expect(backedUp).toBe(true);
    expect(vncSockets[0]?.writableLength).toBeGreaterThan(0);
    expect(written).toBe(writtenWhilePaused); // the producer is stalled, not buffered by us
    expect(maxBuffered).toBeGreaterThan(hwm); // we did hit the mark
    expect(maxBuffered).toBeLessThan(hwm + 4 * 65536 + 1024);

    clientSock.resume();
    const target = writtenWhilePaused + 4 * 1024 * 1024;
    await until(() => receivedBytes >= target);
    expect(checkPattern(Buffer.concat(received), 0)).toBe(true);
  });

  it('client close destroys TCP; onClose runs once', async () => {
    let vncClosed!: Promise<unknown>;
    const { client, server, closes } = await setup((sock) => {
      vncClosed = once(sock, 'close');
      sock.write(BANNER);
    });
    await nextMessage(client);
    await server;
    const clientClosed = once(client, 'close');
    client.close(1000);
    await Promise.all([vncClosed, clientClosed]);
    await until(() => closes.length > 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(closes).toHaveLength(1);
  });

  it('VNC server close closes the WebSocket with 1000 after flushing data', async () => {
    const { client, closes } = await setup((sock) => {
      sock.end(Buffer.concat([Buffer.from(BANNER), pattern(0, 100_000)]));
    });
    const chunks: Buffer[] = [];
    client.on('message', (d: Buffer) => chunks.push(d));
    const [code] = (await once(client, 'close')) as [number];
    expect(code).toBe(1000);
    expect(Buffer.concat(chunks).length).toBe(BANNER.length + 100_000);
    expect(closes).toHaveLength(1);
  });

  it('closes with 1003 on a text frame', async () => {
    const { client, server, closes } = await setup((sock) => sock.write(BANNER));
    await nextMessage(client);
    await server;
    client.send('text');
    const [code] = (await once(client, 'close')) as [number];
    expect(code).toBe(1003);
    await until(() => closes.length > 0);
    expect(closes).toEqual(['websocket closed (1003)']);
  });
});
