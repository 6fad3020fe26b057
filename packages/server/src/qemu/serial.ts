/**
 * A VM's first serial port, as the server sees it: QEMU serves it on a unix socket chardev
 * (`server=on,wait=off`, in the QEMU user's directory, hard-linked into the server's run dir like
 * the QMP socket), and the server keeps one connection to it for as long as the VM runs (taken
 * again after a server restart, when the VM is adopted). Everything the guest writes goes to a
 * bounded, rotated `serial.log`, to a ring of the last 64 KiB in memory (what a new viewer is
 * shown first) and to the viewers subscribed at that moment. Input from viewers goes to the guest,
 * with a bound on what may wait for the guest to read it.
 */
import fs from 'node:fs';
import net from 'node:net';
import { ByteRing } from '../lib/byte-ring.js';
import type { Logger } from '../lib/log.js';
import type { SerialChannel } from '../runtime/port.js';
import { O_APPEND, O_NOFOLLOW, O_RDONLY, O_TRUNC, O_WRONLY, openOwnFile } from './rundir.js';

/** Output kept in memory per VM, for new viewers. */
export const SERIAL_RING_BYTES = 64 * 1024;
/** serial.log is rotated to serial.log.1 when it reaches this size: at most twice this on disk. */
export const SERIAL_LOG_MAX_BYTES = 1024 * 1024;
/** Input waiting for the guest to read it beyond this: writers are told to wait ('drain'). */
export const SERIAL_INPUT_HIGH_WATER = 64 * 1024;
const RECONNECT_MS = 500;

/**
 * An append-only log file bounded in size: when the next write would take it past `maxBytes`, the
 * file is renamed to `<file>.1` (replacing the older one) and a new one is started. Files are
 * opened by the server without following symlinks (openOwnFile).
 */
export class RotatingLog {
  private fd: number;
  private size: number;

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    opts: { truncate: boolean },
  ) {
    this.fd = openOwnFile(file, O_WRONLY | O_APPEND | (opts.truncate ? O_TRUNC : 0));
    this.size = fs.fstatSync(this.fd).size;
  }

  write(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      if (this.size >= this.maxBytes) this.rotate();
      const room = this.maxBytes - this.size;
      const part = data.length > room ? data.subarray(0, room) : data;
      fs.writeSync(this.fd, part);
      this.size += part.length;
      data = data.subarray(part.length);
    }
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.renameSync(this.file, `${this.file}.1`);
    this.fd = openOwnFile(this.file, O_WRONLY | O_APPEND | O_TRUNC);
    this.size = 0;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** The last `maxBytes` of a VM's serial log (serial.log.1 then serial.log), or an empty buffer. */
export function readSerialLogTail(file: string, maxBytes: number): Buffer {
  const tail = (f: string, want: number): Buffer => {
    if (want <= 0) return Buffer.alloc(0);
    let fd: number;
    try {
      fd = fs.openSync(f, O_RDONLY | O_NOFOLLOW);
    } catch {
      return Buffer.alloc(0);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) return Buffer.alloc(0);
      const n = Math.min(st.size, want);
      const buf = Buffer.alloc(n);
      const got = fs.readSync(fd, buf, 0, n, st.size - n);
      return buf.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  };
  const current = tail(file, maxBytes);
  const older = tail(`${file}.1`, maxBytes - current.length);
  return older.length ? Buffer.concat([older, current]) : current;
}

/** The server's end of one VM's serial port. */
export class SerialLink implements SerialChannel {
  private readonly ring = new ByteRing(SERIAL_RING_BYTES);
  private readonly listeners = new Set<(chunk: Buffer) => void>();
  private readonly drainWaiters = new Set<() => void>();
  private readonly enders = new Set<() => void>();
  private sock: net.Socket | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly logFile: RotatingLog;
  /** Bytes received from the guest since this link was made. */
  received = 0;

  constructor(
    private readonly socketPath: string,
    logPath: string,
    private readonly log: Logger,
    private readonly vmId: string,
    opts: { truncate: boolean; logMaxBytes?: number },
  ) {
    // An adopted VM: its earlier output is still in the log, so new viewers see it too.
    if (!opts.truncate) this.ring.write(readSerialLogTail(logPath, SERIAL_RING_BYTES));
    this.logFile = new RotatingLog(logPath, opts.logMaxBytes ?? SERIAL_LOG_MAX_BYTES, { truncate: opts.truncate });
  }

  /** Connects (resolves true once connected, false when the socket does not answer); later drops reconnect. */
  connect(): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(false);
      const sock = net.connect({ path: this.socketPath });
      let up = false;
      sock.once('connect', () => {
        up = true;
        this.sock = sock;
        sock.setNoDelay(true);
        resolve(true);
        for (const w of this.drainWaiters) w();
        this.drainWaiters.clear();
      });
      sock.on('data', (chunk: Buffer) => this.onData(chunk));
      sock.on('drain', () => {
        for (const w of this.drainWaiters) w();
        this.drainWaiters.clear();
      });
      sock.on('error', () => undefined);
      sock.once('close', () => {
        if (this.sock === sock) this.sock = null;
        if (!up) resolve(false);
        this.scheduleReconnect();
      });
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, RECONNECT_MS);
    this.timer.unref();
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    this.ring.write(chunk);
    try {
      this.logFile.write(chunk);
    } catch (err) {
      this.log.warn({ vmId: this.vmId, err: String(err) }, 'serial: cannot write serial.log');
    }
    for (const l of this.listeners) l(chunk);
  }

  get connected(): boolean {
    return this.sock !== null;
  }

  backlog(): Buffer {
    return this.ring.snapshot();
  }

  subscribe(onData: (chunk: Buffer) => void, onEnd?: () => void): () => void {
    this.listeners.add(onData);
    if (onEnd) this.enders.add(onEnd);
    return () => {
      this.listeners.delete(onData);
      if (onEnd) this.enders.delete(onEnd);
    };
  }

  write(data: Buffer): boolean {
    const sock = this.sock;
    if (!sock) return false;
    sock.write(data);
    return sock.writableLength <= SERIAL_INPUT_HIGH_WATER;
  }

  onceWritable(cb: () => void): void {
    if (this.sock && this.sock.writableLength <= SERIAL_INPUT_HIGH_WATER) return cb();
    this.drainWaiters.add(cb);
  }

  /** Stops for good (the VM is gone, or the server lets go of it). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sock?.destroy();
    this.sock = null;
    this.logFile.close();
    this.listeners.clear();
    this.drainWaiters.clear();
    const enders = [...this.enders];
    this.enders.clear();
    for (const end of enders) end();
  }
}
