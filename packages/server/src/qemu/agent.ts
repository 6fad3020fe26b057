/**
 * The guest agent (issue 14): a client of the QEMU guest agent (qemu-ga) in the guest, reached
 * through the VM's virtio-serial port `org.qemu.guest_agent.0`, which QEMU serves as a unix socket
 * (`run/<id>/qga.sock`, a link to the one in `run/<id>/qemu/`).
 *
 * Everything that comes from the guest is untrusted:
 * - each message is at most MAX_MESSAGE_BYTES (64 KiB); a longer one, a line that is not a JSON
 *   object, more than 64 KiB skipped while waiting for a resync delimiter, or too many messages
 *   nobody asked for, and the connection is cut off (retried later with a growing backoff);
 * - every request has a timeout; a request that times out closes the connection (its late answer
 *   could otherwise be taken for the next one's);
 * - answers are validated by hand and bounded (strings, list lengths) before they leave this file.
 * Each session starts with `guest-sync-delimited`: the client sends 0xFF (qemu-ga resets its parser)
 * and the command with a random id; the agent answers 0xFF then `{"return": id}`; everything before
 * the 0xFF (stale or partial output) is skipped.
 */
import net from 'node:net';
import { randomInt } from 'node:crypto';
import type { Logger } from '../lib/log.js';

export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Messages nobody asked for (late answers) tolerated per session before the agent is cut off. */
const MAX_UNSOLICITED = 16;
const DELIMITER = 0xff;
const NEWLINE = 0x0a;

export class AgentProtocolError extends Error {}
export class AgentTimeoutError extends Error {}
export class AgentClosedError extends Error {}
/** A request while the session waits before connecting again. */
class AgentBackoff extends AgentClosedError {}
export class AgentCommandError extends Error {
  constructor(readonly errorClass: string, desc: string) {
    super(`${errorClass}: ${desc}`);
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The agent's byte stream into JSON objects: newline-delimited, at most `maxBytes` a message;
 * after resync() everything up to the next 0xFF is skipped (at most `maxBytes` of it).
 * push() throws AgentProtocolError when the guest breaks a bound or sends something that is not a
 * JSON object; the caller then cuts the connection.
 */
export class AgentFramer {
  #parts: Buffer[] = [];
  #length = 0;
  #synced = true;
  #skipped = 0;

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  resync(): void {
    this.#synced = false;
    this.#skipped = 0;
    this.#parts = [];
    this.#length = 0;
  }

  push(data: Buffer): Json[] {
    const out: Json[] = [];
    let rest = data;
    while (rest.length > 0) {
      if (!this.#synced) {
        const at = rest.indexOf(DELIMITER);
        if (at === -1) {
          this.#skipped += rest.length;
          if (this.#skipped > this.maxBytes) throw new AgentProtocolError(`more than ${this.maxBytes} bytes before the sync delimiter`);
          return out;
        }
        this.#skipped += at;
        if (this.#skipped > this.maxBytes) throw new AgentProtocolError(`more than ${this.maxBytes} bytes before the sync delimiter`);
        this.#synced = true;
        rest = rest.subarray(at + 1);
        continue;
      }
      const nl = rest.indexOf(NEWLINE);
      const ff = rest.indexOf(DELIMITER);
      if (ff !== -1 && (nl === -1 || ff < nl)) {
        // a delimiter inside a message: the partial message before it is dropped
        this.#parts = [];
        this.#length = 0;
        rest = rest.subarray(ff + 1);
        continue;
      }
      if (nl === -1) {
        this.#add(rest);
        return out;
      }
      this.#add(rest.subarray(0, nl));
      rest = rest.subarray(nl + 1);
      const line = Buffer.concat(this.#parts, this.#length).toString('utf8').trim();
      this.#parts = [];
      this.#length = 0;
      if (line === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        throw new AgentProtocolError('the agent sent a line that is not JSON');
      }
      if (!isObject(msg)) throw new AgentProtocolError('the agent sent JSON that is not an object');
      out.push(msg);
    }
    return out;
  }

  #add(b: Buffer): void {
    this.#length += b.length;
    if (this.#length > this.maxBytes) throw new AgentProtocolError(`an agent message is longer than ${this.maxBytes} bytes`);
    if (b.length > 0) this.#parts.push(Buffer.from(b));
  }
}

interface Waiter {
  resolve: (msg: Json) => void;
  reject: (err: Error) => void;
}

/** One connection to an agent socket. Requests must be serialized by the caller (one at a time). */
export class AgentConnection {
  readonly #socket: net.Socket;
  readonly #framer: AgentFramer;
  #waiter: Waiter | null = null;
  #unsolicited = 0;
  #closed = false;
  #failure: Error | null = null;

  private constructor(socket: net.Socket, maxBytes: number) {
    this.#socket = socket;
    this.#framer = new AgentFramer(maxBytes);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(new AgentClosedError(`agent socket: ${err.message}`)));
    socket.on('close', () => this.#fail(new AgentClosedError('agent connection closed')));
  }

  static connect(socketPath: string, opts: { timeoutMs: number; maxBytes?: number }): Promise<AgentConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new AgentTimeoutError('agent connect timed out'));
      }, opts.timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new AgentClosedError(`agent connect: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new AgentConnection(socket, opts.maxBytes ?? MAX_MESSAGE_BYTES));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the connection ended (a protocol error means the agent was cut off). */
  get failure(): Error | null {
    return this.#failure;
  }

  /** guest-sync-delimited with a fresh id; resolves once the agent answers with that id. */
  async sync(timeoutMs: number): Promise<void> {
    const id = randomInt(1, 2 ** 31);
    this.#framer.resync();
    this.#write(Buffer.concat([Buffer.from([DELIMITER]), Buffer.from(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`)]));
    const deadline = Date.now() + timeoutMs;
    for (let stale = 0; stale <= MAX_UNSOLICITED; stale++) {
      const msg = await this.#next(Math.max(1, deadline - Date.now()), 'guest-sync-delimited');
      if (msg.return === id) return;
    }
    throw this.#cut(new AgentProtocolError('the agent does not answer the sync'));
  }

  /** Runs a command; resolves with its `return`, rejects with AgentCommandError for the agent's error. */
  async call(command: string, args: Json | undefined, timeoutMs: number): Promise<unknown> {
    this.#write(Buffer.from(`${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`));
    const msg = await this.#next(timeoutMs, command);
    if ('return' in msg) return msg.return;
    if (isObject(msg.error)) {
      const cls = typeof msg.error.class === 'string' ? msg.error.class.slice(0, 64) : 'GenericError';
      const desc = typeof msg.error.desc === 'string' ? msg.error.desc.slice(0, 256) : 'unknown error';
      throw new AgentCommandError(cls, desc);
    }
    throw this.#cut(new AgentProtocolError(`the agent's answer to ${command} is neither a return nor an error`));
  }

  /**
   * Sends a command that has no answer on success (guest-shutdown); waits `graceMs` for an error
   * answer and rejects with it if one comes.
   */
  async send(command: string, args: Json | undefined, graceMs: number): Promise<void> {
    try {
      await this.call(command, args, graceMs);
    } catch (err) {
      if (err instanceof AgentTimeoutError || err instanceof AgentClosedError) return;
      throw err;
    }
  }

  close(): void {
    this.#fail(new AgentClosedError('agent connection closed'));
  }

  #write(b: Buffer): void {
    if (this.#closed) throw this.#failure ?? new AgentClosedError('agent connection closed');
    this.#socket.write(b);
  }

  #next(timeoutMs: number, what: string): Promise<Json> {
    if (this.#closed) return Promise.reject(this.#failure ?? new AgentClosedError('agent connection closed'));
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        // its late answer must never be taken for another request's
        const err = new AgentTimeoutError(`the agent did not answer ${what} in ${timeoutMs} ms`);
        this.#fail(err);
        reject(err);
      }, timeoutMs);
      this.#waiter = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let messages: Json[];
    try {
      messages = this.#framer.push(chunk);
    } catch (err) {
      this.#cut(err as Error);
      return;
    }
    for (const m of messages) {
      const w = this.#waiter;
      if (w) {
        this.#waiter = null;
        w.resolve(m);
      } else if (++this.#unsolicited > MAX_UNSOLICITED) {
        this.#cut(new AgentProtocolError('the agent sends messages nobody asked for'));
        return;
      }
    }
  }

  #cut(err: Error): Error {
    this.#fail(err);
    return err;
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failure = err;
    this.#socket.destroy();
    const w = this.#waiter;
    this.#waiter = null;
    w?.reject(err);
  }
}

// --- validation of the agent's answers -----------------------------------------------------

export interface AgentInfo {
  version?: string;
  os?: { name: string; version: string; kernel: string };
  hostname?: string;
  interfaces?: Array<{ name: string; mac: string | null; ips: string[] }>;
  fsinfo?: Array<{ mountpoint: string; type: string; name: string; totalBytes: number | null; usedBytes: number | null }>;
}

const MAX_TEXT = 256;
const MAX_ITEMS = 64;

function text(v: unknown, max = MAX_TEXT): string | null {
  if (typeof v !== 'string') return null;
  // control characters never leave this file
   
  return v.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, max);
}
function count(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}
const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function parseVersion(v: unknown): string | undefined {
  return isObject(v) ? (text(v.version, 64) ?? undefined) : undefined;
}
export function parseOsInfo(v: unknown): AgentInfo['os'] {
  if (!isObject(v)) return undefined;
  return {
    name: text(v['pretty-name']) ?? text(v.name) ?? '',
    version: text(v['version-id'], 64) ?? text(v.version, 64) ?? '',
    kernel: text(v['kernel-release'], 128) ?? '',
  };
}
export function parseHostName(v: unknown): string | undefined {
  return isObject(v) ? (text(v['host-name'], 255) ?? undefined) : undefined;
}
export function parseInterfaces(v: unknown): AgentInfo['interfaces'] {
  if (!Array.isArray(v)) return undefined;
  const out: NonNullable<AgentInfo['interfaces']> = [];
  for (const it of v.slice(0, MAX_ITEMS)) {
    if (!isObject(it)) continue;
    const name = text(it.name, 64);
    if (!name) continue;
    const mac = typeof it['hardware-address'] === 'string' && MAC.test(it['hardware-address']) ? it['hardware-address'].toLowerCase() : null;
    const ips: string[] = [];
    if (Array.isArray(it['ip-addresses'])) {
      for (const a of it['ip-addresses'].slice(0, MAX_ITEMS)) {
        if (!isObject(a) || typeof a['ip-address'] !== 'string') continue;
        const ip = a['ip-address'];
        const ok = a['ip-address-type'] === 'ipv6' ? IPV6.test(ip) && ip.includes(':') : IPV4.test(ip) && ip.split('.').every((o) => Number(o) <= 255);
        if (!ok) continue;
        const prefix = count(a.prefix);
        ips.push(prefix !== null && prefix <= 128 ? `${ip}/${prefix}` : ip);
      }
    }
    out.push({ name, mac, ips });
  }
  return out;
}
export function parseFsInfo(v: unknown): AgentInfo['fsinfo'] {
  if (!Array.isArray(v)) return undefined;
  const out: NonNullable<AgentInfo['fsinfo']> = [];
  for (const f of v.slice(0, MAX_ITEMS)) {
    if (!isObject(f)) continue;
    const mountpoint = text(f.mountpoint);
    if (mountpoint === null) continue;
    out.push({
      mountpoint,
      type: text(f.type, 64) ?? '',
      name: text(f.name, 128) ?? '',
      totalBytes: count(f['total-bytes']),
      usedBytes: count(f['used-bytes']),
    });
  }
  return out;
}

// --- one session per running VM ------------------------------------------------------------

export interface AgentSessionOptions {
  /** How often a connected agent is pinged and a missing one looked for. */
  checkMs?: number;
  /** Per request. */
  timeoutMs?: number;
  /** Backoff after a failure: from minBackoffMs, doubling, up to maxBackoffMs (a cut-off agent waits at least cutOffMs). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  cutOffMs?: number;
  /** How long info() answers from its cache. */
  cacheMs?: number;
  maxBytes?: number;
}

const DEFAULTS: Required<AgentSessionOptions> = {
  checkMs: 10_000,
  timeoutMs: 3_000,
  minBackoffMs: 2_000,
  maxBackoffMs: 60_000,
  cutOffMs: 30_000,
  cacheMs: 5_000,
  maxBytes: MAX_MESSAGE_BYTES,
};

/**
 * Keeps the agent of one running VM in view: connects (and reconnects) to its socket, syncs, pings,
 * and runs the requests one at a time. `connected` means the agent answered its last sync.
 */
export class AgentSession {
  readonly #opts: Required<AgentSessionOptions>;
  #conn: AgentConnection | null = null;
  #connected = false;
  #lastSeen: Date | null = null;
  #failures = 0;
  #retryAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #cache: { at: number; info: AgentInfo } | null = null;
  #stopped = false;
  /** How many times the agent was cut off (flood, garbage). */
  cutOffs = 0;

  constructor(
    readonly vmId: string,
    private readonly socketPath: string,
    private readonly log: Logger,
    opts: AgentSessionOptions = {},
  ) {
    this.#opts = { ...DEFAULTS, ...opts };
  }

  start(): void {
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#conn?.close();
    this.#conn = null;
    this.#connected = false;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get lastSeen(): Date | null {
    return this.#lastSeen;
  }

  /** What the agent says about the guest (cached for cacheMs); AgentClosedError when it does not answer. */
  info(): Promise<AgentInfo> {
    const c = this.#cache;
    if (c && Date.now() - c.at < this.#opts.cacheMs) return Promise.resolve(c.info);
    return this.#exclusive(async (conn) => {
      const info: AgentInfo = {};
      const ask = async (cmd: string): Promise<unknown> => {
        try {
          return await conn.call(cmd, undefined, this.#opts.timeoutMs);
        } catch (err) {
          if (err instanceof AgentCommandError) return undefined; // not supported by this agent
          throw err;
        }
      };
      const version = parseVersion(await ask('guest-info'));
      if (version !== undefined) info.version = version;
      const os = parseOsInfo(await ask('guest-get-osinfo'));
      if (os) info.os = os;
      const hostname = parseHostName(await ask('guest-get-host-name'));
      if (hostname !== undefined) info.hostname = hostname;
      const interfaces = parseInterfaces(await ask('guest-network-get-interfaces'));
      if (interfaces) info.interfaces = interfaces;
      const fsinfo = parseFsInfo(await ask('guest-get-fsinfo'));
      if (fsinfo) info.fsinfo = fsinfo;
      this.#cache = { at: Date.now(), info };
      return info;
    });
  }

  /** guest-shutdown (powerdown): the agent has no answer on success; an error answer rejects. */
  shutdown(): Promise<void> {
    return this.#exclusive(async (conn) => {
      await conn.send('guest-shutdown', { mode: 'powerdown' }, 1_000);
    });
  }

  /** guest-fsfreeze-freeze: the number of file systems frozen. */
  freeze(): Promise<number> {
    return this.#exclusive(async (conn) => count(await conn.call('guest-fsfreeze-freeze', undefined, 10_000)) ?? 0);
  }

  /** guest-fsfreeze-thaw: the number of file systems thawed. */
  thaw(): Promise<number> {
    return this.#exclusive(async (conn) => count(await conn.call('guest-fsfreeze-thaw', undefined, 10_000)) ?? 0);
  }

  /** Runs `fn` alone on a synced connection (connecting first when needed and not backing off). */
  #exclusive<T>(fn: (conn: AgentConnection) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      try {
        const conn = await this.#ready(false);
        const r = await fn(conn);
        this.#seen();
        return r;
      } catch (err) {
        // a refusal while backing off changes nothing
        if (!(err instanceof AgentCommandError) && !(err instanceof AgentBackoff)) this.#lost(err as Error);
        throw err;
      }
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  async #ready(background: boolean): Promise<AgentConnection> {
    if (this.#stopped) throw new AgentClosedError('the VM is not running');
    if (this.#conn && !this.#conn.closed) {
      await this.#conn.sync(this.#opts.timeoutMs);
      return this.#conn;
    }
    if (Date.now() < this.#retryAt && !background) throw new AgentBackoff('the guest agent does not answer');
    this.#conn = await AgentConnection.connect(this.socketPath, { timeoutMs: this.#opts.timeoutMs, maxBytes: this.#opts.maxBytes });
    await this.#conn.sync(this.#opts.timeoutMs);
    return this.#conn;
  }

  #seen(): void {
    if (!this.#connected) this.log.info({ vmId: this.vmId }, 'guest agent connected');
    this.#connected = true;
    this.#lastSeen = new Date();
    this.#failures = 0;
    this.#retryAt = 0;
  }

  #lost(err: Error): void {
    const conn = this.#conn;
    const cut = err instanceof AgentProtocolError || conn?.failure instanceof AgentProtocolError;
    const silent = !cut && err instanceof AgentTimeoutError;
    conn?.close();
    this.#conn = null;
    if (this.#connected) this.log.info({ vmId: this.vmId, err: err.message }, 'guest agent lost');
    this.#connected = false;
    this.#cache = null;
    this.#failures++;
    // a silent agent (not started yet) is looked for again soon; refusals and cut-offs back off
    let wait = silent ? this.#opts.minBackoffMs : Math.min(this.#opts.maxBackoffMs, this.#opts.minBackoffMs * 2 ** Math.min(this.#failures - 1, 16));
    if (cut) {
      this.cutOffs++;
      wait = Math.max(wait, this.#opts.cutOffMs);
      this.log.warn({ vmId: this.vmId, err: (conn?.failure ?? err).message, retryInMs: wait }, 'guest agent cut off');
    }
    this.#retryAt = Date.now() + wait;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#check(), ms);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    if (Date.now() >= this.#retryAt || this.#conn) {
      const run = async (): Promise<void> => {
        try {
          const conn = await this.#ready(true);
          await conn.call('guest-ping', undefined, this.#opts.timeoutMs);
          this.#seen();
        } catch (err) {
          if (!this.#stopped) this.#lost(err as Error);
        }
      };
      const p = this.#chain.then(run, run);
      this.#chain = p.catch(() => undefined);
      await p;
    }
    this.#schedule(this.#conn ? this.#opts.checkMs : Math.max(100, Math.min(this.#opts.checkMs, this.#retryAt - Date.now())));
  }
}
