import type { DiskInfo } from '@qemu-manager/contract';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { StorageRoots } from '../lib/storage.js';
import { ensureSystemUser, type QemuIdentity } from './identity.js';
import type { Logger } from '../lib/log.js';
import type { ImageSnapshot, ImageTool } from '../runtime/port.js';
import { imageLayers, nextLayer, openImageLayers, type ImageFormat } from '../lib/image-check.js';

/** The unprivileged system user that reads images when the server runs as root. */
const QEMU_IMG_USER = 'qm-img';

interface QemuImgOptions {
  storage: StorageRoots;
  log: Logger;
  nbdBinary?: string;
  /** Each inspection is killed (SIGKILL) after this long. */
  timeoutMs?: number;
  /** qemu-img create, which writes a fresh image the server names itself. */
  createTimeoutMs?: number;
  /** Inspections running at once; more wait in a queue of `maxQueued`, beyond which they are refused. */
  maxConcurrent?: number;
  maxQueued?: number;
  /** Run as this user when root (tests); default qm-img, created on first use. */
  user?: string;
  /** Called once with that user before its first run (guest isolation keeps it off host services). */
  confine?: (identity: QemuIdentity) => Promise<void>;
}

/**
 * qemu-img, always through an argv array, and never as root on an existing image.
 *
 * An existing image is read like this: the server opens it itself (StorageRoots.openFile, no symlink
 * followed) and checks with imageLayers that it refers to nothing outside the roots; a root
 * `qemu-nbd` serves that descriptor read-only as raw bytes (raw parses nothing and opens nothing
 * else) on a unix socket only the qm-img user may connect to, and qemu-img runs as qm-img with the
 * format given explicitly (`--image-opts driver=<format>`, no probing), `-U`, no backing chain, so
 * whatever a crafted image makes qemu-img do, it does as a user who can read no image and no root
 * file. Runs are bounded in time and number, and qemu-img's messages go to the log, never to a client.
 */
export class QemuImg implements ImageTool {
  private readonly storage: StorageRoots;
  private readonly log: Logger;
  private readonly nbdBinary: string;
  private readonly timeoutMs: number;
  private readonly createTimeoutMs: number;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly userName: string;
  private readonly confine: (identity: QemuIdentity) => Promise<void>;
  private identity: Promise<QemuIdentity | null> | null = null;
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly binary: string,
    opts: QemuImgOptions,
  ) {
    this.storage = opts.storage;
    this.log = opts.log;
    this.nbdBinary = opts.nbdBinary ?? (path.isAbsolute(binary) ? path.join(path.dirname(binary), 'qemu-nbd') : 'qemu-nbd');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.createTimeoutMs = opts.createTimeoutMs ?? 60_000;
    this.maxConcurrent = opts.maxConcurrent ?? 4;
    this.maxQueued = opts.maxQueued ?? 16;
    this.userName = opts.user ?? QEMU_IMG_USER;
    this.confine = opts.confine ?? (() => Promise.resolve());
  }

  /**
   * `qemu-img info` of an image in a known format, read as described above. `filename` is the
   * path, `actual-size` comes from the server's own fstat, `backing-filename` from imageLayers.
   */
  async info(file: string, format: ImageFormat): Promise<DiskInfo> {
    const layers = await imageLayers(this.storage, file, format);
    return this.limited(async () => {
      const opened = this.storage.openFile(file, 'disk', fs.constants.O_RDONLY);
      try {
        // The file served is checked again from its own descriptor, so a swap after imageLayers
        // cannot hand qemu-img a data file or a new kind of image.
        await nextLayer(opened.fd, opened.real, format);
        const out = await this.inspect(opened.fd, format, ['info', '--output=json', '-U'], opened.real);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(out) as Record<string, unknown>;
        } catch {
          throw this.unreadable(opened.real, 'its output was not JSON');
        }
        const info: DiskInfo = {
          'virtual-size': num(parsed['virtual-size']) ?? 0,
          filename: opened.real,
          format,
          'actual-size': opened.stat.blocks * 512,
        };
        const cluster = num(parsed['cluster-size']);
        if (cluster !== undefined) info['cluster-size'] = cluster;
        if (typeof parsed['dirty-flag'] === 'boolean') info['dirty-flag'] = parsed['dirty-flag'];
        if (layers[1]) info['backing-filename'] = layers[1].path;
        return info;
      } finally {
        fs.closeSync(opened.fd);
      }
    });
  }

  /** Creates a new image at a path the server chose (as the server's own user: no untrusted input). */
  async create(file: string, format: string, sizeGb: number, signal?: AbortSignal): Promise<void> {
    const r = await run(this.binary, ['create', '-q', '-f', format, '--', file, `${sizeGb}G`], {
      timeoutMs: this.createTimeoutMs,
      ...(signal ? { signal } : {}),
    });
    if (r.code !== 0) {
      this.log.warn({ file, code: r.code, signal: r.signal, stderr: cleanMessage(r.stderr).slice(0, 2000) }, 'qemu-img create failed');
      throw new Error(r.signal === 'SIGKILL' ? `qemu-img create did not finish within ${this.createTimeoutMs / 1000} s` : 'see the server log');
    }
  }

  // --- clones and backing chains (issue 10) ---

  /**
   * A new qcow2 overlay at a server-chosen path over a managed disk: `-F` names the backing format
   * (never probed) and `-u` keeps qemu-img from opening the backing file at all; the size is the
   * base's virtual size, read by `info` (the safe way).
   */
  async overlay(file: string, backing: { file: string; format: ImageFormat }, signal?: AbortSignal): Promise<void> {
    const base = await this.info(backing.file, backing.format);
    const r = await run(
      this.binary,
      ['create', '-q', '-f', 'qcow2', '-F', backing.format, '-b', base.filename, '-u', '--', file, String(base['virtual-size'])],
      { timeoutMs: this.createTimeoutMs, ...(signal ? { signal } : {}) },
    );
    if (r.code !== 0) {
      this.log.warn({ file, code: r.code, signal: r.signal, stderr: cleanMessage(r.stderr).slice(0, 2000) }, 'qemu-img create (overlay) failed');
      throw new Error(r.signal === 'SIGKILL' ? 'qemu-img create was stopped' : 'qemu-img create failed (see the server log)');
    }
  }

  /**
   * `qemu-img convert -p` of an existing image into a new one of the same format, read the safe
   * way: the server opens and checks the source (openImageLayers, with the caller's backing rule),
   * a root qemu-nbd serves that descriptor read-only as raw, and qemu-img runs as the unprivileged
   * user with the format given explicitly; it writes the target through a descriptor the server
   * created (O_EXCL, lent to that user only while it runs), and the result is checked to be a
   * self-contained image before it is given back to root. Every helper process dies with the
   * server (parent-death signal), so a crash leaves only the partial file, which the task removes.
   * A source with a backing chain is refused: qemu-img cannot be given the chain over NBD.
   */
  async copy(
    source: { file: string; format: ImageFormat },
    target: string,
    opts: {
      signal?: AbortSignal;
      progress?: (done: number, total: number) => void;
      checkBacking?: (real: string, index: number) => void;
      /** import and convert (issue 10): the target's format (default: the source's). */
      format?: ImageFormat;
    } = {},
  ): Promise<void> {
    const { signal } = opts;
    const total = (await this.info(source.file, source.format))['virtual-size'];
    const layers = await openImageLayers(this.storage, source.file, source.format, opts.checkBacking ? { checkBacking: opts.checkBacking } : {});
    if (layers.length > 1) {
      for (const l of layers) fs.closeSync(l.fd);
      throw new AppError('IMAGE_NOT_ALLOWED', `${layers[0]!.path} has the backing file ${layers[1]!.path}: a full copy of a backing chain is not supported (clone its base instead)`);
    }
    const src = layers[0]!;
    const who = await this.user();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-img-'));
    let out: number | undefined;
    let nbd: ChildProcess | undefined;
    let img: ChildProcess | undefined;
    const kill = () => {
      nbd?.kill('SIGKILL');
      img?.kill('SIGKILL');
    };
    signal?.addEventListener('abort', kill, { once: true });
    try {
      if (signal?.aborted) throw new Error('cancelled');
      out = fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      if (who) {
        fs.chmodSync(dir, 0o711);
        fs.fchownSync(out, who.uid, who.gid);
      }
      const sock = path.join(dir, `${crypto.randomBytes(12).toString('hex')}.sock`);
      const nbdErr: Buffer[] = [];
      nbd = spawn(
        ...withParentDeath(this.nbdBinary, ['--read-only', '--shared=1', '--image-opts', '--socket', sock, 'driver=raw,file.driver=file,file.filename=/proc/self/fd/3,file.locking=off']),
        { stdio: ['ignore', 'ignore', 'pipe', src.fd] },
      );
      const nbdExit = exited(nbd);
      nbd.stderr!.on('data', (b: Buffer) => nbdErr.push(b));
      if (!(await this.socketUp(sock, nbd, signal))) {
        this.log.warn({ file: src.path, stderr: cleanMessage(Buffer.concat(nbdErr).toString('utf8')).slice(0, 2000) }, 'qemu-nbd did not serve the image');
        nbd.kill('SIGKILL');
        await nbdExit;
        throw new Error(signal?.aborted ? 'cancelled' : 'the image could not be served (see the server log)');
      }
      if (who) fs.lchownSync(sock, who.uid, who.gid);
      const json = JSON.stringify({ driver: src.format, file: { driver: 'nbd', server: { type: 'unix', path: sock } }, ...(src.format === 'qcow2' ? { backing: null } : {}) });
      const outFormat = opts.format ?? src.format;
      img = spawn(...withParentDeath(this.binary, ['convert', '-p', '-O', outFormat, `json:${json}`, '/proc/self/fd/3']), {
        stdio: ['ignore', 'pipe', 'pipe', out],
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
        ...(who ? { uid: who.uid, gid: who.gid } : {}),
      });
      let tail = '';
      img.stdout!.on('data', (b: Buffer) => {
        tail = (tail + b.toString('latin1')).slice(-200);
        const all = [...tail.matchAll(/\((\d{1,3}(?:\.\d+)?)\/100%\)/g)];
        const pct = all.length ? Number(all[all.length - 1]![1]) : NaN;
        if (Number.isFinite(pct)) opts.progress?.(Math.round((Math.min(pct, 100) / 100) * total), total);
      });
      const err = collect(img.stderr!, 64 << 10);
      const result = await exited(img);
      nbd.kill('SIGKILL');
      await nbdExit;
      if (signal?.aborted) throw new Error('cancelled');
      if (result.code !== 0) {
        this.log.warn({ file: src.path, target, code: result.code, signal: result.signal, stderr: cleanMessage(err()).slice(0, 2000) }, 'qemu-img convert failed');
        throw new Error('qemu-img convert failed (see the server log)');
      }
      // Root takes the file back, and it must be what was asked for: self-contained, in the format asked.
      if (who) fs.fchownSync(out, 0, 0);
      fs.fchmodSync(out, 0o600);
      if ((await nextLayer(out, target, outFormat)) !== null) throw new Error('the copy names a backing file');
      opts.progress?.(total, total);
    } finally {
      signal?.removeEventListener('abort', kill);
      kill();
      fs.closeSync(src.fd);
      if (out !== undefined) fs.closeSync(out);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Waits for qemu-nbd's socket (no deadline of its own: a cancel or its exit ends the wait). */
  private async socketUp(sock: string, nbd: ChildProcess, signal?: AbortSignal): Promise<boolean> {
    const started = Date.now();
    while (!signal?.aborted && Date.now() - started < this.timeoutMs && nbd.exitCode === null && nbd.signalCode === null) {
      try {
        if (fs.lstatSync(sock).isSocket()) return true;
      } catch {
        // not there yet
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  /** Runs `fn` when one of the maxConcurrent slots is free; refuses at once when the queue is full. */
  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxConcurrent) {
      if (this.queue.length >= this.maxQueued) {
        throw new AppError('RATE_LIMITED', 'Too many images are being inspected at once; try again in a moment');
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.running--;
    }
  }

  private user(): Promise<QemuIdentity | null> {
    if (process.getuid?.() !== 0) return Promise.resolve(null);
    this.identity ??= ensureSystemUser(this.userName, this.log).then(async (id) => {
      await this.confine(id);
      return id;
    }).catch((err: unknown) => {
      this.identity = null;
      throw err;
    });
    return this.identity;
  }

  /**
   * Serves `fd` over NBD (root qemu-nbd, raw, read-only) in a private directory and runs qemu-img
   * `args` on it as the unprivileged user; returns its stdout. Everything is killed at the deadline.
   */
  private async inspect(fd: number, format: ImageFormat, args: string[], shown: string): Promise<string> {
    const who = await this.user();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-img-'));
    let nbd: ChildProcess | undefined;
    let img: ChildProcess | undefined;
    const started = Date.now();
    const timer = setTimeout(() => {
      nbd?.kill('SIGKILL');
      img?.kill('SIGKILL');
    }, this.timeoutMs);
    try {
      // Root owns the directory; others may only pass through it to the one socket, whose owner
      // (the qm-img user) is the only one allowed to connect.
      if (who) fs.chmodSync(dir, 0o711);
      const sock = path.join(dir, `${crypto.randomBytes(12).toString('hex')}.sock`);
      const nbdErr: Buffer[] = [];
      nbd = spawn(
        this.nbdBinary,
        ['--read-only', '--shared=1', '--image-opts', '--socket', sock, 'driver=raw,file.driver=file,file.filename=/proc/self/fd/3,file.locking=off'],
        { stdio: ['ignore', 'ignore', 'pipe', fd] },
      );
      const nbdExit = exited(nbd);
      nbd.stderr!.on('data', (b: Buffer) => nbdErr.push(b));
      if (!(await this.socketReady(sock, nbd, started))) {
        this.log.warn({ file: shown, stderr: cleanMessage(Buffer.concat(nbdErr).toString('utf8')).slice(0, 2000) }, 'qemu-nbd did not serve the image');
        nbd.kill('SIGKILL');
        await nbdExit;
        throw Date.now() - started >= this.timeoutMs ? this.tooSlow(shown) : this.unreadable(shown, 'the image could not be served');
      }
      if (who) fs.lchownSync(sock, who.uid, who.gid);
      const opts = `driver=${format},file.driver=nbd,file.server.type=unix,file.server.path=${sock}`;
      img = spawn(this.binary, [...args, '--image-opts', opts], {
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
        ...(who ? { uid: who.uid, gid: who.gid } : {}),
      });
      const out = collect(img.stdout!, 1 << 20);
      const err = collect(img.stderr!, 64 << 10);
      const result = await exited(img);
      nbd.kill('SIGKILL');
      await nbdExit;
      if (result.code !== 0) {
        const timedOut = result.signal === 'SIGKILL';
        this.log.warn({ file: shown, code: result.code, signal: result.signal, stderr: cleanMessage(err()).slice(0, 2000) }, 'qemu-img failed');
        throw timedOut ? this.tooSlow(shown) : this.unreadable(shown, 'qemu-img refused it');
      }
      return out();
    } finally {
      clearTimeout(timer);
      nbd?.kill('SIGKILL');
      img?.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  private async socketReady(sock: string, nbd: ChildProcess, started: number): Promise<boolean> {
    while (Date.now() - started < this.timeoutMs && nbd.exitCode === null && nbd.signalCode === null) {
      try {
        if (fs.lstatSync(sock).isSocket()) return true;
      } catch {
        // not there yet
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  private unreadable(file: string, why: string): AppError {
    return new AppError('IMAGE_UNREADABLE', `Cannot read the image ${file}: ${why} (details in the server log)`);
  }

  private tooSlow(file: string): AppError {
    return new AppError('TOOL_TIMEOUT', `Reading the image ${file} took longer than ${this.timeoutMs / 1000} s; it was stopped`);
  }

  // --- snapshots (issue 10) ------------------------------------------------------------------

  /** The internal snapshots of an image: `qemu-img info` read the safe way (as info above). */
  async snapshots(file: string, format: ImageFormat): Promise<ImageSnapshot[]> {
    await imageLayers(this.storage, file, format);
    return this.limited(async () => {
      const opened = this.storage.openFile(file, 'disk', fs.constants.O_RDONLY);
      try {
        await nextLayer(opened.fd, opened.real, format);
        const out = await this.inspect(opened.fd, format, ['info', '--output=json', '-U'], opened.real);
        let parsed: { snapshots?: unknown };
        try {
          parsed = JSON.parse(out) as { snapshots?: unknown };
        } catch {
          throw this.unreadable(opened.real, 'its output was not JSON');
        }
        const list = Array.isArray(parsed.snapshots) ? (parsed.snapshots as Array<Record<string, unknown>>) : [];
        return list.map((sn) => ({
          name: typeof sn.name === 'string' ? sn.name : '',
          vmStateBytes: num(sn['vm-state-size']) ?? 0,
          date: new Date((num(sn['date-sec']) ?? 0) * 1000).toISOString(),
        }));
      } finally {
        fs.closeSync(opened.fd);
      }
    });
  }

  /**
   * `qemu-img snapshot -c/-a/-d` on an image no VM has open. The server opens the file itself
   * (storage rules, no symlink followed, read-write), checks that descriptor (format, no data file)
   * and gives qemu-img only that descriptor, in the format recorded for it and with no backing
   * file opened (`"backing": null`: internal snapshots live in the top image alone). qemu-img's own
   * file lock makes it fail rather than write an image a QEMU holds.
   */
  async snapshot(file: string, format: ImageFormat, op: 'create' | 'apply' | 'delete', tag: string): Promise<void> {
    if (format !== 'qcow2') throw new AppError('SNAPSHOT_UNSUPPORTED', `${file} is a ${format} image; only qcow2 images have internal snapshots`);
    const opened = this.storage.openFile(file, 'disk', fs.constants.O_RDWR);
    try {
      await nextLayer(opened.fd, opened.real, format);
      const flag = { create: '-c', apply: '-a', delete: '-d' }[op];
      const image = `json:${JSON.stringify({ driver: format, backing: null, file: { driver: 'file', filename: '/proc/self/fd/3' } })}`;
      const child = spawn(this.binary, ['snapshot', '-q', flag, tag, image], {
        stdio: ['ignore', 'ignore', 'pipe', opened.fd],
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      });
      const err = collect(child.stderr!, 64 << 10);
      const timer = setTimeout(() => child.kill('SIGKILL'), this.createTimeoutMs);
      const result = await exited(child).finally(() => clearTimeout(timer));
      if (result.code !== 0) {
        const message = cleanMessage(err());
        this.log.warn({ file: opened.real, op, tag, code: result.code, signal: result.signal, stderr: message.slice(0, 2000) }, 'qemu-img snapshot failed');
        if (result.signal === 'SIGKILL') throw new AppError('TOOL_TIMEOUT', `qemu-img snapshot on ${opened.real} took longer than ${this.createTimeoutMs / 1000} s; it was stopped`);
        const locked = /lock/i.test(message);
        throw new AppError('QEMU_ERROR', `qemu-img could not ${op} the snapshot ${tag} of ${opened.real}${locked ? ': the image is in use by another process' : ' (details in the server log)'}`);
      }
    } finally {
      fs.closeSync(opened.fd);
    }
  }

  // disk resize (issue 10)
  /**
   * `qemu-img resize` of a managed image, grow only (no `--shrink`). The server opens the file
   * itself (StorageRoots.openFile, read-write, no symlink followed), checks on that descriptor that
   * it refers to nothing (no data file; a backing file is not opened: `backing: null`), and hands
   * the descriptor to qemu-img, which opens `/proc/self/fd/3` with the format given explicitly.
   * qemu-img's image locking refuses the file while a QEMU has it open.
   */
  async resize(file: string, format: ImageFormat, sizeGb: number, signal?: AbortSignal): Promise<void> {
    const opened = this.storage.openFile(file, 'disk', fs.constants.O_RDWR);
    try {
      await nextLayer(opened.fd, opened.real, format);
      const image = JSON.stringify({
        driver: format,
        ...(format === 'raw' ? {} : { backing: null }),
        file: { driver: 'file', filename: '/proc/self/fd/3' },
      });
      const child = spawn(this.binary, ['resize', '-q', '-f', format, `json:${image}`, `${sizeGb}G`], {
        stdio: ['ignore', 'ignore', 'pipe', opened.fd],
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      });
      const err = collect(child.stderr!, 64 << 10);
      const kill = () => child.kill('SIGKILL');
      const timer = setTimeout(kill, this.createTimeoutMs);
      if (signal?.aborted) kill();
      else signal?.addEventListener('abort', kill, { once: true });
      const result = await exited(child).finally(() => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', kill);
      });
      if (result.code !== 0) {
        const why = cleanMessage(err());
        this.log.warn({ file: opened.real, code: result.code, signal: result.signal, stderr: why.slice(0, 2000) }, 'qemu-img resize failed');
        if (signal?.aborted) throw new Error('the resize was cancelled');
        if (result.signal === 'SIGKILL') throw new Error(`qemu-img resize did not finish within ${this.createTimeoutMs / 1000} s`);
        if (/lock/i.test(why)) throw new AppError('DISK_IN_USE', `${opened.real} is open in another program (a running VM?); it was not resized`);
        if (/shrink/i.test(why)) throw new AppError('DISK_CANNOT_SHRINK', `${opened.real} is already larger than ${sizeGb} GB; it was not resized`);
        throw new Error('qemu-img resize failed (see the server log)');
      }
    } finally {
      fs.closeSync(opened.fd);
    }
  }

  // --- backups: engine (issue 13) ---

  /**
   * A new qcow2 at a server-chosen path, `virtualSize` bytes: the file a backup job writes. For an
   * incremental, `-F qcow2 -b <relative name>` records the parent backup's file as the backing
   * file and `-u` keeps qemu-img from opening it (root opens no untrusted image). Runs as the
   * server's user (no untrusted input: a new file).
   */
  async backupTarget(file: string, virtualSize: number, backing: string | null, signal?: AbortSignal): Promise<void> {
    if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0) throw new Error(`invalid virtual size ${virtualSize}`);
    const args = ['create', '-q', '-f', 'qcow2', ...(backing ? ['-F', 'qcow2', '-b', backing, '-u'] : []), '--', file, String(virtualSize)];
    const r = await run(this.binary, args, { timeoutMs: this.createTimeoutMs, ...(signal ? { signal } : {}) });
    if (r.code !== 0) {
      const why = cleanMessage(r.stderr);
      this.log.warn({ file, code: r.code, signal: r.signal, stderr: why.slice(0, 2000) }, 'qemu-img create (backup target) failed');
      if (/no space/i.test(why)) throw new Error('qemu-img create failed: no space left on the backup target');
      throw new Error(r.signal === 'SIGKILL' ? 'qemu-img create was stopped' : 'qemu-img create failed (see the server log)');
    }
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('error', () => resolve({ code: -1, signal: null }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

function collect(stream: NodeJS.ReadableStream, max: number): () => string {
  const parts: Buffer[] = [];
  let len = 0;
  stream.on('data', (b: Buffer) => {
    if (len < max) parts.push(b);
    len += b.length;
  });
  return () => Buffer.concat(parts).toString('utf8');
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

/** qemu-img's stderr, on one line, for the log only. */
function cleanMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(/^qemu-(img|nbd):\s*/, '').trim())
    .filter(Boolean)
    .join('; ');
}

// --- clones and backing chains (issue 10) ---
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f)) ?? null;

/**
 * The argv that runs `binary` so that it is killed when the server dies (util-linux setpriv sets
 * the parent-death signal, then execs it; the uid change, if any, happens before, in the spawn).
 */
function withParentDeath(binary: string, args: string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
}

