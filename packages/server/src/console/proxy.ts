import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { rawErrorResponse } from '../http/error-table.js';
import { AppError, isAppError } from '../lib/errors.js';
import { relay } from './relay.js';

/** A VM's VNC server: a unix socket path (the default), or a TCP address (VNC_TCP=1). */
export type VncTarget = { path: string } | { host: string; port: number };

interface VncProxyLogger {
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
}

interface VncProxyOptions {
  /**
   * Maps a VM id to its VNC endpoint, or null when the VM is unknown / not running (→ 404
   * VM_NOT_RUNNING). May throw an AppError (e.g. VM_NOT_FOUND) to choose the answer (its status from
   * the error table); any other thrown error becomes INTERNAL.
   */
  resolveTarget: (vmId: string) => Promise<VncTarget | null> | VncTarget | null;
  log?: VncProxyLogger;
  /** Matched against the request pathname (query string ignored); group 1 is the VM id. */
  path?: RegExp;
  /** Give up connecting to the VNC server after this long (→ 502). Default 5000 ms. */
  connectTimeoutMs?: number;
}

export interface VncProxy {
  /** Returns false (and touches nothing) when the path does not match, so the caller can route it. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Terminates all live sessions and aborts upgrades in progress. */
  close(): void;
  /** Number of established WebSocket ↔ VNC sessions. */
  readonly sessions: number;
}

const DEFAULT_PATH = /^\/api\/vnc\/([^/]{1,64})$/;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Largest client → server message accepted; RFB client messages are tiny. */
const MAX_PAYLOAD = 16 * 1024 * 1024;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

/** Any failure as a domain error: ours keep their code, anything else is INTERNAL (its text is not sent). */
function toAppError(err: unknown): AppError {
  return isAppError(err) ? err : new AppError('INTERNAL', 'internal error');
}

/** Writes a complete HTTP error response (JSON ErrorBody) to a not-yet-upgraded socket. */
function rejectUpgrade(socket: Duplex, err: AppError): void {
  if (socket.destroyed) return;
  socket.once('finish', () => socket.destroy());
  socket.end(rawErrorResponse(err.code, err.message));
}

/** Mirrors the checks ws performs, so we never open a VNC connection for a bad request. */
function invalidUpgrade(req: IncomingMessage): string | null {
  if (req.method !== 'GET') return 'WebSocket upgrade requires GET';
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'Upgrade: websocket required';
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WS_KEY.test(key)) return 'invalid Sec-WebSocket-Key';
  const version = req.headers['sec-websocket-version'];
  if (version !== '8' && version !== '13') return 'unsupported Sec-WebSocket-Version';
  return null;
}

/**
 * WebSocket → VNC (RFB over a unix socket, or TCP) proxy for noVNC. The target always comes from
 * `resolveTarget(vmId)`; nothing in the request (query string, headers) can pick the socket, host
 * or port. The VNC connection is made before the WebSocket handshake is completed, so a client never sees
 * an open WebSocket to nothing: failures are answered as plain HTTP errors instead.
 */
export function createVncProxy(opts: VncProxyOptions): VncProxy {
  const pattern = opts.path ?? DEFAULT_PATH;
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const log = opts.log;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_PAYLOAD,
    clientTracking: false,
    handleProtocols: (protocols: Set<string>) =>
      protocols.has('binary') ? 'binary' : (protocols.values().next().value ?? false),
  });
  const live = new Set<{ ws: WebSocket; tcp: net.Socket }>();
  const upgrading = new Set<{ socket: Duplex; tcp?: net.Socket }>();

  async function upgrade(vmId: string, req: IncomingMessage, socket: Duplex, head: Buffer) {
    const pending: { socket: Duplex; tcp?: net.Socket } = { socket };
    upgrading.add(pending);
    const onSocketError = (): void => {
      socket.destroy();
    };
    socket.on('error', onSocketError);
    // If the client goes away (or ws rejects the handshake) before the session exists, drop TCP.
    socket.once('close', () => {
      upgrading.delete(pending);
      pending.tcp?.destroy();
    });
    try {
      const invalid = invalidUpgrade(req);
      if (invalid) throw new AppError('BAD_REQUEST', invalid);

      let target: VncTarget | null;
      try {
        target = await opts.resolveTarget(vmId);
      } catch (err) {
        const failure = toAppError(err);
        if (failure.code === 'INTERNAL') log?.warn({ vmId, err }, 'vnc: resolveTarget failed');
        throw failure;
      }
      if (!target) throw new AppError('VM_NOT_RUNNING', 'VM is not running');
      if (socket.destroyed) return;

      const tcp = await connectTcp(target, connectTimeoutMs, pending);
      if (socket.destroyed) {
        tcp.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgrading.delete(pending);
        socket.off('error', onSocketError);
        const session = { ws, tcp };
        live.add(session);
        const started = Date.now();
        log?.info({ vmId, ...('path' in target ? { socket: target.path } : { port: target.port }) }, 'vnc: session opened');
        relay(ws, tcp, {
          onClose: (reason) => {
            live.delete(session);
            log?.info({ vmId, reason, durationMs: Date.now() - started }, 'vnc: session closed');
          },
        });
      });
    } catch (err) {
      const failure = toAppError(err);
      if (failure.code === 'QEMU_UNREACHABLE') log?.warn({ vmId, err: failure.message }, 'vnc: connect failed');
      upgrading.delete(pending);
      rejectUpgrade(socket, failure);
    }
  }

  return {
    handleUpgrade(req, socket, head) {
      const pathname = (req.url ?? '').split('?', 1)[0] ?? '';
      const match = pattern.exec(pathname);
      const vmId = match?.[1];
      if (vmId === undefined) return false;
      void upgrade(vmId, req, socket, head);
      return true;
    },
    close() {
      for (const p of upgrading) {
        p.tcp?.destroy();
        p.socket.destroy();
      }
      upgrading.clear();
      for (const s of live) {
        s.ws.terminate();
        s.tcp.destroy();
      }
    },
    get sessions() {
      return live.size;
    },
  };
}

function connectTcp(
  target: VncTarget,
  timeoutMs: number,
  pending: { tcp?: net.Socket },
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const tcp = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
    pending.tcp = tcp;
    const fail = (reason: string): void => {
      tcp.destroy();
      reject(new AppError('QEMU_UNREACHABLE', `VNC server unreachable: ${reason}`));
    };
    const timer = setTimeout(() => fail('connect timeout'), timeoutMs);
    tcp.once('error', (err) => {
      clearTimeout(timer);
      fail(err.message);
    });
    // Destroyed before connecting (proxy closed, client gone): settle the promise anyway.
    tcp.once('close', () => {
      clearTimeout(timer);
      fail('connection closed');
    });
    tcp.once('connect', () => {
      clearTimeout(timer);
      tcp.removeAllListeners('error');
      tcp.removeAllListeners('close');
      // Keep a guard until relay() attaches its own handler.
      tcp.on('error', () => tcp.destroy());
      resolve(tcp);
    });
  });
}
