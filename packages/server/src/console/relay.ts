import type net from 'node:net';
import { WebSocket } from 'ws';
import type { RawData } from 'ws';

export interface RelayOptions {
  /** Pause the TCP side while the WebSocket has more than this many bytes queued. Default 1 MiB. */
  highWaterMark?: number;
  /** Called exactly once, when the relay is torn down, with a short human-readable reason. */
  onClose?: (reason: string) => void;
}

const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Relays bytes between an open WebSocket and a connected TCP socket, in both directions, with
 * backpressure:
 *  - TCP → WS: every TCP chunk becomes one binary message. While `ws.bufferedAmount` exceeds
 *    `highWaterMark` the TCP socket is paused; it resumes from a send callback once the queue has
 *    drained below the mark (the last queued send always sees an empty queue, so it cannot stall).
 *  - WS → TCP: binary messages are written to TCP; when `tcp.write()` returns false the WebSocket
 *    is paused until TCP emits 'drain'.
 * Text frames are a protocol violation for RFB: the WebSocket is closed with 1003.
 * Either side closing closes the other (WS: close(1000), or terminate() after a TCP error;
 * TCP: destroy()). Data still buffered in the TCP socket is flushed to the WebSocket before its
 * close frame because ws queues the close frame behind pending messages.
 *
 * The TCP socket must not be in flowing mode yet (no 'data' listener), so bytes the server sent
 * before the relay starts (e.g. the RFB banner) are buffered by the socket and not lost.
 */
export function relay(ws: WebSocket, tcp: net.Socket, opts: RelayOptions = {}): void {
  const highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  let finished = false;
  let tcpPaused = false;
  let wsPaused = false;

  const finish = (reason: string, wsAction: 'close' | 'terminate' | 'none'): void => {
    if (finished) return;
    finished = true;
    tcp.off('drain', onTcpDrain);
    tcp.destroy();
    if (wsAction === 'terminate') ws.terminate();
    else if (wsAction === 'close' && ws.readyState === WebSocket.OPEN) ws.close(1000);
    opts.onClose?.(reason);
  };

  const onSent = (): void => {
    // Errors here mean the WebSocket is going away; its 'close' event tears the relay down.
    if (tcpPaused && !finished && ws.bufferedAmount <= highWaterMark) {
      tcpPaused = false;
      tcp.resume();
    }
  };

  const onTcpDrain = (): void => {
    wsPaused = false;
    if (!finished) ws.resume();
  };

  tcp.setNoDelay(true);

  tcp.on('data', (chunk: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(chunk, { binary: true }, onSent);
    if (!tcpPaused && ws.bufferedAmount > highWaterMark) {
      tcpPaused = true;
      tcp.pause();
    }
  });
  tcp.on('end', () => finish('vnc server closed the connection', 'close'));
  tcp.on('close', () => finish('vnc connection closed', 'close'));
  tcp.on('error', (err) => finish(`vnc connection error: ${err.message}`, 'terminate'));

  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (finished) return;
    if (!isBinary) {
      ws.close(1003, 'binary frames only');
      return;
    }
    if (!tcp.write(toBuffer(data)) && !wsPaused) {
      wsPaused = true;
      ws.pause();
      tcp.once('drain', onTcpDrain);
    }
  });
  ws.on('close', (code: number) => finish(`websocket closed (${code})`, 'none'));
  ws.on('error', (err: Error) => finish(`websocket error: ${err.message}`, 'terminate'));

  if (ws.readyState !== WebSocket.OPEN) finish('websocket not open', 'terminate');
  else if (tcp.destroyed) finish('vnc connection closed', 'close');
}
