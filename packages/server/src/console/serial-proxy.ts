/**
 * Serial console (issue 14): WS /api/vms/{vm_id}/serial. Raw bytes both ways between WebSocket
 * viewers and a running VM's serial port (the runtime keeps the port connected; this only fans
 * it out). Several viewers may watch at once; each is first sent the port's backlog (its last
 * 64 KiB of output). A viewer that does not read is cut off once more than VIEWER_MAX_BUFFERED
 * bytes wait in the server for it, so a stalled viewer never grows the server's memory. Input
 * (binary or text frames, each at most MAX_INPUT_FRAME bytes) goes to the guest; while the guest
 * does not read it, the viewer's input is paused.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { rawErrorResponse } from '../http/error-table.js';
import { AppError, isAppError } from '../lib/errors.js';
import type { SerialChannel } from '../runtime/port.js';

/** Output waiting in the server for one viewer beyond this: the viewer is cut off. */
export const VIEWER_MAX_BUFFERED = 1024 * 1024;
/** Largest input frame accepted from a viewer (keystrokes and pastes). */
export const MAX_INPUT_FRAME = 64 * 1024;
/** Viewers at once per VM. */
export const MAX_VIEWERS_PER_VM = 16;
export const SERIAL_PATH = /^\/api\/vms\/([^/]{1,64})\/serial$/;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

interface SerialProxyLogger {
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
}

export interface SerialProxyOptions {
  /** The VM's serial port; throws the AppError that refuses it (VM_NOT_FOUND, VM_NOT_RUNNING, ...). */
  resolve: (vmId: string) => SerialChannel;
  log?: SerialProxyLogger;
}

/** One viewer, as the server sees it (for tests and logs). */
export interface SerialViewerStats {
  vmId: string;
  sentBytes: number;
  cutOff: boolean;
}

export interface SerialProxy {
  /** False (and nothing touched) when the path is not a serial console's. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
  readonly sessions: number;
}

function invalidUpgrade(req: IncomingMessage): string | null {
  if (req.method !== 'GET') return 'WebSocket upgrade requires GET';
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'Upgrade: websocket required';
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WS_KEY.test(key)) return 'invalid Sec-WebSocket-Key';
  const version = req.headers['sec-websocket-version'];
  if (version !== '8' && version !== '13') return 'unsupported Sec-WebSocket-Version';
  return null;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export function createSerialProxy(opts: SerialProxyOptions): SerialProxy {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_INPUT_FRAME, clientTracking: false });
  const live = new Map<WebSocket, SerialViewerStats>();
  const perVm = new Map<string, number>();

  function attach(vmId: string, ws: WebSocket, channel: SerialChannel): void {
    const stats: SerialViewerStats = { vmId, sentBytes: 0, cutOff: false };
    live.set(ws, stats);
    perVm.set(vmId, (perVm.get(vmId) ?? 0) + 1);
    const send = (chunk: Buffer): void => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount + chunk.length > VIEWER_MAX_BUFFERED) {
        // It does not read: cut it off rather than queue without end.
        stats.cutOff = true;
        opts.log?.warn({ vmId, sentBytes: stats.sentBytes }, 'serial: a viewer that does not read was cut off');
        ws.terminate();
        return;
      }
      stats.sentBytes += chunk.length;
      ws.send(chunk, { binary: true });
    };
    let paused = false;
    const unsubscribe = channel.subscribe(send, () => {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'the VM stopped');
    });
    const backlog = channel.backlog();
    if (backlog.length) send(backlog);
    ws.on('message', (data: RawData) => {
      if (!channel.write(toBuffer(data)) && !paused) {
        paused = true;
        ws.pause();
        channel.onceWritable(() => {
          paused = false;
          if (ws.readyState === WebSocket.OPEN) ws.resume();
        });
      }
    });
    ws.on('error', () => ws.terminate());
    ws.once('close', () => {
      unsubscribe();
      live.delete(ws);
      const n = (perVm.get(vmId) ?? 1) - 1;
      if (n > 0) perVm.set(vmId, n);
      else perVm.delete(vmId);
      opts.log?.info({ vmId, sentBytes: stats.sentBytes, cutOff: stats.cutOff }, 'serial: viewer closed');
    });
  }

  return {
    handleUpgrade(req, socket, head) {
      const pathname = (req.url ?? '').split('?', 1)[0] ?? '';
      const vmId = SERIAL_PATH.exec(pathname)?.[1];
      if (vmId === undefined) return false;
      socket.on('error', () => socket.destroy());
      let channel: SerialChannel;
      try {
        const invalid = invalidUpgrade(req);
        if (invalid) throw new AppError('BAD_REQUEST', invalid);
        channel = opts.resolve(vmId);
        if ((perVm.get(vmId) ?? 0) >= MAX_VIEWERS_PER_VM) throw new AppError('LIMIT_EXCEEDED', `At most ${MAX_VIEWERS_PER_VM} serial viewers per VM`);
      } catch (err) {
        const failure = isAppError(err) ? err : new AppError('INTERNAL', 'internal error');
        if (failure.code === 'INTERNAL') opts.log?.warn({ vmId, err: String(err) }, 'serial: resolve failed');
        socket.once('finish', () => socket.destroy());
        socket.end(rawErrorResponse(failure.code, failure.message));
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => attach(vmId, ws, channel));
      return true;
    },
    close() {
      for (const ws of live.keys()) ws.terminate();
    },
    get sessions() {
      return live.size;
    },
  };
}
