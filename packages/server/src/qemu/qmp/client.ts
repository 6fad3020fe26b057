import { EventEmitter } from 'node:events';
import net from 'node:net';
import { QmpClosedError, QmpCommandError, QmpConnectError, QmpTimeoutError } from './errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface QmpGreeting {
  QMP: {
    version: { qemu: { major: number; minor: number; micro: number }; package: string };
    capabilities: string[];
  };
}

/** Events: 'event' (a QMP asynchronous event) and 'close' (emitted exactly once). */
interface QmpClientEvents {
  event: [QmpEvent];
  close: [];
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
/** A single QMP message larger than this (without a newline) is treated as a protocol failure. */
const MAX_LINE_CHARS = 16 * 1024 * 1024;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Minimal QEMU Machine Protocol client over a unix socket.
 *
 * Wire format: one JSON object per line (QEMU terminates with CRLF). Every command carries a
 * unique `id`, and answers are matched by that id, so answers may arrive in any order.
 *
 * Malformed input policy: a line that is not a JSON object is silently skipped (QEMU never sends
 * one; skipping keeps a single bad line from tearing down the VM's control channel). A line
 * longer than 16 MiB without a newline closes the connection.
 *
 * Note: a command that times out is only abandoned on our side; QEMU may still execute it.
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  readonly #socket: net.Socket;
  readonly #pending = new Map<string, Pending>();
  #buffer = '';
  #nextId = 1;
  #closed = false;
  #closeCause: unknown;
  #greeting: QmpGreeting | undefined;
  #onGreeting: ((g: QmpGreeting) => void) | undefined;
  #onGreetingFail: ((err: Error) => void) | undefined;

  private constructor(socket: net.Socket) {
    super();
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', (err) => {
      this.#closeCause ??= err;
    });
    socket.on('close', () => this.#finish());
  }

  /**
   * Connects, reads the greeting and negotiates capabilities (`qmp_capabilities`).
   * Rejects with QmpConnectError (cause = underlying error) on ENOENT / ECONNREFUSED / timeout
   * (default 2000 ms for the whole handshake); the socket is destroyed in that case.
   */
  static connect(socketPath: string, opts: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const client = new QmpClient(net.createConnection(socketPath));
    return new Promise<QmpClient>((resolve, reject) => {
      let settled = false;
      const fail = (cause: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.close();
        const reason = cause instanceof Error ? cause.message : String(cause);
        reject(new QmpConnectError(`QMP connect to ${socketPath} failed: ${reason}`, { cause }));
      };
      const timer = setTimeout(
        () => fail(new QmpTimeoutError(`QMP handshake timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const greeted = new Promise<QmpGreeting>((res, rej) => {
        client.#onGreeting = res;
        client.#onGreetingFail = rej;
      });
      greeted
        .then(() => client.execute('qmp_capabilities', undefined, { timeoutMs }))
        .then(
          () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(client);
          },
          (err: unknown) => {
            // Report the socket-level reason (ENOENT, ECONNREFUSED...) rather than "closed".
            fail(err instanceof QmpClosedError && err.cause !== undefined ? err.cause : err);
          },
        );
    });
  }

  /** The greeting QEMU sent on connect. */
  get greeting(): QmpGreeting {
    if (!this.#greeting) throw new QmpClosedError('QMP greeting not received');
    return this.#greeting;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs a QMP command and resolves with its `return` value.
   * Rejects with QmpCommandError (QEMU error), QmpClosedError (connection gone before the answer)
   * or QmpTimeoutError (default 10 s).
   */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    opts: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const id = `qm-${this.#nextId++}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const message: Json = { execute: command, id };
    if (args !== undefined) message.arguments = args;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpTimeoutError(`QMP command ${command} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Destroys the socket. Pending commands reject with QmpClosedError; 'close' is emitted. */
  close(): void {
    this.#socket.destroy();
    this.#finish();
  }

  /** Resolves true once the connection is closed (immediately if already), false on timeout. */
  waitClosed(timeoutMs?: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const onClose = (): void => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      this.once('close', onClose);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.off('close', onClose);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  #closedError(): QmpClosedError {
    return new QmpClosedError('QMP connection closed', { cause: this.#closeCause });
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#buffer = '';
    const err = this.#closedError();
    this.#onGreetingFail?.(err);
    this.#onGreeting = this.#onGreetingFail = undefined;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.emit('close');
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while (!this.#closed && (nl = this.#buffer.indexOf('\n')) !== -1) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line !== '') this.#onLine(line);
    }
    if (this.#buffer.length > MAX_LINE_CHARS) {
      this.#closeCause ??= new Error('QMP message too large');
      this.close();
    }
  }

  #onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // malformed line: skipped (see class doc)
    }
    if (!isObject(msg)) return;

    if (this.#greeting === undefined && isObject(msg.QMP)) {
      this.#greeting = msg as unknown as QmpGreeting;
      this.#onGreeting?.(this.#greeting);
      this.#onGreeting = this.#onGreetingFail = undefined;
      return;
    }
    if (typeof msg.event === 'string') {
      const ev: QmpEvent = { event: msg.event };
      if (isObject(msg.data)) ev.data = msg.data;
      if (isObject(msg.timestamp)) ev.timestamp = msg.timestamp as QmpEvent['timestamp'];
      this.emit('event', ev);
      return;
    }
    if (typeof msg.id !== 'string') return; // not an answer to one of our commands
    const pending = this.#pending.get(msg.id);
    if (!pending) return; // late answer to a timed-out command
    this.#pending.delete(msg.id);
    clearTimeout(pending.timer);
    if ('return' in msg) {
      pending.resolve(msg.return);
    } else if (isObject(msg.error)) {
      const cls = typeof msg.error.class === 'string' ? msg.error.class : 'GenericError';
      const desc = typeof msg.error.desc === 'string' ? msg.error.desc : 'unknown QMP error';
      pending.reject(new QmpCommandError(cls, desc));
    } else {
      pending.reject(new QmpCommandError('GenericError', 'malformed QMP response'));
    }
  }
}
