import type { FastifyInstance } from 'fastify';
import { BlockList, type Socket } from 'node:net';
import { trustProxyOption, type Config } from '../config.js';
import { unmapIPv4 } from '../lib/net.js';

/** Requests whose body is a stream with its own idle timeout (ISO uploads), not a whole-body deadline. */
const STREAMED_BODIES = new Set(['PUT /api/isos/:name']);

/** Options for node's HTTP server: slow headers are cut after `headersTimeout`, checked every second. */
export function serverOptions(config: Config): { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  const { headersTimeoutMs } = config.http;
  // Node's requestTimeout covers the whole body, which would cut a multi-GB upload: the whole-body
  // deadline is applied per request below instead, and uploads get an idle timeout.
  return { headersTimeout: headersTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: Math.min(1000, headersTimeoutMs) };
}

/**
 * Bounds what one client can hold: open connections (in total and per peer address, configured
 * proxies exempt) and the time a request body may take to arrive.
 */
export function registerConnectionLimits(app: FastifyInstance, config: Config): void {
  const { maxConnections, maxConnectionsPerClient, requestTimeoutMs } = config.http;
  const server = app.server;
  server.maxConnections = maxConnections;

  const trust = trustProxyOption(config.trustProxy);
  const list = Array.isArray(trust) ? proxyList(trust) : null;
  const isProxy = (addr: string) => (typeof trust === 'function' ? trust(addr, 0) : list ? list(addr) : false);
  const perPeer = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress;
    if (!addr || isProxy(addr)) return;
    const n = (perPeer.get(addr) ?? 0) + 1;
    if (n > maxConnectionsPerClient) {
      socket.destroy();
      return;
    }
    perPeer.set(addr, n);
    socket.once('close', () => {
      const left = (perPeer.get(addr) ?? 1) - 1;
      if (left <= 0) perPeer.delete(addr);
      else perPeer.set(addr, left);
    });
  });

  app.addHook('onRequest', (req, reply, done) => {
    const raw = req.raw;
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody || raw.complete || STREAMED_BODIES.has(`${req.method} ${req.routeOptions.url}`)) return done();
    const timer = setTimeout(() => {
      if (!raw.complete) raw.socket?.destroy();
    }, requestTimeoutMs);
    timer.unref();
    reply.raw.once('close', () => clearTimeout(timer));
    done();
  });
}

/** A matcher for TRUST_PROXY's address/CIDR list, the same rules Fastify applies. */
function proxyList(entries: string[]): (addr: string) => boolean {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/');
    const type = addr!.includes(':') ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, Number(bits), type);
  }
  return (addr) => {
    const a = unmapIPv4(addr);
    return list.check(a, a.includes(':') ? 'ipv6' : 'ipv4');
  };
}
