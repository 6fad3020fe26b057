import type { DiskInfo } from '@qemu-manager/contract';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { StorageRoots } from '../lib/storage.js';
import { ensureSystemUser, type QemuIdentity } from './identity.js';
import type { Logger } from '../lib/log.js';
import type { ChainOptions, ChainSource, ImageCheckResult, ImageSnapshot, ImageTool } from '../runtime/port.js';
import { imageLayers, nextLayer, openImageLayers, type ImageFormat, type SourceFormat } from '../lib/image-check.js';
import { ImageLender } from './img-lend.js';
import { virtualSize } from './image-size.js';

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
  /** The server's run directory: where the record of files lent to qemu-img lives (none: nothing is lent, NBD reads). */
  runDir?: string;
}

/** Where, in the run directory, the files lent to qemu-img for a copy are recorded. */
export const LENT_RECORD = 'img-lent.json';

/** Extra `qemu-img convert` flags of a copy. */
const COPY_FLAGS: string[] = [];

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
  private readonly lender: ImageLender | null;
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
    this.lender = opts.runDir ? new ImageLender(path.join(opts.runDir, LENT_RECORD), opts.storage) : null;
  }

  /**
   * `qemu-img info` of an image in a known format, read as described above. `filename` is the
   * path, `actual-size` comes from the server's own fstat, `backing-filename` from imageLayers.
   */
  async info(file: string, format: SourceFormat): Promise<DiskInfo> {
    // vdi and vhdx are read only here and as copy()'s source (uploads, imports: `intake`).
    const layers = await imageLayers(this.storage, file, format, { intake: true });
    return this.limited(async () => {
      const opened = this.storage.openFile(file, 'disk', fs.constants.O_RDONLY);
      try {
        // The file served is checked again from its own descriptor, so a swap after imageLayers
        // cannot hand qemu-img a data file or a new kind of image.
        await nextLayer(opened.fd, opened.real, format, { intake: true });
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
   * base's virtual size, read by the server from the base's header once its layers are checked.
   */
  async overlay(file: string, backing: { file: string; format: ImageFormat }, signal?: AbortSignal): Promise<void> {
    const layers = await openImageLayers(this.storage, backing.file, backing.format);
    const base = layers[0]!;
    let size: number | null;
    try {
      size = virtualSize(base.fd, base.format as ImageFormat); // opened without intake: raw, qcow2 or vmdk
    } finally {
      for (const l of layers) fs.closeSync(l.fd);
    }
    if (size === null) throw this.unreadable(base.path, 'its header gives no virtual size');
    const r = await run(
      this.binary,
      ['create', '-q', '-f', 'qcow2', '-F', backing.format, '-b', base.path, '-u', '--', file, String(size)],
      { timeoutMs: this.createTimeoutMs, ...(signal ? { signal } : {}) },
    );
    if (r.code !== 0) {
      this.log.warn({ file, code: r.code, signal: r.signal, stderr: cleanMessage(r.stderr).slice(0, 2000) }, 'qemu-img create (overlay) failed');
      throw new Error(r.signal === 'SIGKILL' ? 'qemu-img create was stopped' : 'qemu-img create failed (see the server log)');
    }
  }

  /**
   * `qemu-img convert -p` of an existing image (its whole backing chain, flattened) into a new
   * self-contained one, read the safe way. The server opens and checks every layer itself
   * (openImageLayers: storage roots, formats, the caller's backing rule) and qemu-img is given each
   * layer explicitly, as one nested json spec (`backing: {...}` per layer, `backing: null` under the
   * base), so it never opens a name from an image header. qemu-img runs as the unprivileged user and
   * reads each layer one of two ways: lent (ImageLender: the checked descriptor's group becomes
   * qemu-img's, mode 0640, recorded first, given back when the copy ends, fails or is cancelled, or
   * at the next start after a crash) and reopened through `/proc/self/fd/N` with the format given
   * explicitly; or, for a file that cannot be lent (not the server's own), served as raw bytes by a
   * root read-only `qemu-nbd` on a socket only that user may connect to. It writes the target
   * through a descriptor the server created (O_EXCL, lent to that user only while it runs), and the
   * result is checked to be a self-contained image before it is given back to root. The virtual size
   * (for progress) comes from the top layer's header, read by the server. Every helper process dies
   * with the server (parent-death signal), so a crash leaves only the partial file, which the task
   * removes, and the lends, which the next start gives back.
   */
  async copy(
    source: { file: string; format: SourceFormat },
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
    const layers = await openImageLayers(this.storage, source.file, source.format, { ...(opts.checkBacking ? { checkBacking: opts.checkBacking } : {}), intake: true });
    const top = layers[0]!;
    const gives: Array<() => void> = [];
    const nbds: Array<{ proc: ChildProcess; exit: Promise<unknown> }> = [];
    let dir: string | undefined;
    let out: number | undefined;
    let img: ChildProcess | undefined;
    const kill = () => {
      for (const n of nbds) n.proc.kill('SIGKILL');
      img?.kill('SIGKILL');
    };
    signal?.addEventListener('abort', kill, { once: true });
    const giveBack = () => {
      for (const g of gives.splice(0)) {
        try {
          g();
        } catch (err) {
          this.log.error({ err: String(err) }, 'a file lent to qemu-img could not be given back (the next start retries)');
        }
      }
    };
    try {
      // vdi and vhdx (intake only) keep their size where only qemu-img reads it: the safe info.
      const total = top.format === 'vdi' || top.format === 'vhdx' ? (await this.info(source.file, top.format))['virtual-size'] : virtualSize(top.fd, top.format);
      if (total === null) throw this.unreadable(top.path, 'its header gives no virtual size');
      const who = await this.user();
      if (signal?.aborted) throw new Error('cancelled');
      out = fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      if (who) fs.fchownSync(out, who.uid, who.gid);
      // qemu-img's fd 3 is the target, then one fd per layer it reads directly.
      const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe', out];
      const files: Array<Record<string, unknown>> = [];
      for (const l of layers) {
        const give = who && this.lender ? this.lender.lend(l.fd, l.path, who.gid) : null;
        if (give) gives.push(give);
        if (!who || give) {
          // Without a qemu-img user it runs as the server's own user, who may read the file anyway.
          files.push({ driver: 'file', filename: `/proc/self/fd/${stdio.length}`, locking: 'off' });
          stdio.push(l.fd);
          continue;
        }
        // QEMU cannot resolve a layer's relative backing name over NBD ("Cannot generate a base
        // directory for NBD nodes"): a chain is copied only when every layer can be lent.
        if (layers.length > 1) {
          throw new AppError('IMAGE_NOT_ALLOWED', `${l.path} is part of a backing chain and is not the server's own file (owner uid ${fs.fstatSync(l.fd).uid}); a full copy of such a chain is not supported: flatten it by hand (qemu-img convert) and attach the result`);
        }
        if (!dir) {
          dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-img-'));
          fs.chmodSync(dir, 0o711);
        }
        files.push({ driver: 'nbd', server: { type: 'unix', path: await this.serve(l.fd, l.path, dir, who, nbds, signal) } });
      }
      let spec: Record<string, unknown> | null = null;
      for (let i = layers.length - 1; i >= 0; i--) {
        const l = layers[i]!;
        spec = { driver: l.format, file: files[i], ...(l.format === 'qcow2' ? { backing: spec } : {}) };
      }
      const outFormat = opts.format ?? top.format;
      img = spawn(...withParentDeath(this.binary, ['convert', '-p', ...COPY_FLAGS, '-O', outFormat, `json:${JSON.stringify(spec)}`, '/proc/self/fd/3']), {
        stdio,
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
      kill();
      await Promise.all(nbds.map((n) => n.exit));
      giveBack();
      if (signal?.aborted) throw new Error('cancelled');
      if (result.code !== 0) {
        this.log.warn({ file: top.path, target, code: result.code, signal: result.signal, stderr: cleanMessage(err()).slice(0, 2000) }, 'qemu-img convert failed');
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
      await Promise.all(nbds.map((n) => n.exit));
      giveBack();
      for (const l of layers) fs.closeSync(l.fd);
      if (out !== undefined) fs.closeSync(out);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Serves one layer's descriptor as raw bytes (root qemu-nbd, read-only) on a socket of `who`'s; returns its path. */
  private async serve(
    fd: number,
    shown: string,
    dir: string,
    who: QemuIdentity,
    nbds: Array<{ proc: ChildProcess; exit: Promise<unknown> }>,
    signal?: AbortSignal,
  ): Promise<string> {
    const sock = path.join(dir, `${crypto.randomBytes(12).toString('hex')}.sock`);
    const nbdErr: Buffer[] = [];
    const nbd = spawn(
      ...withParentDeath(this.nbdBinary, ['--read-only', '--shared=1', '--image-opts', '--socket', sock, 'driver=raw,file.driver=file,file.filename=/proc/self/fd/3,file.locking=off']),
      { stdio: ['ignore', 'ignore', 'pipe', fd] },
    );
    const entry = { proc: nbd, exit: exited(nbd) };
    nbds.push(entry);
    nbd.stderr!.on('data', (b: Buffer) => nbdErr.push(b));
    if (!(await this.socketUp(sock, nbd, signal))) {
      this.log.warn({ file: shown, stderr: cleanMessage(Buffer.concat(nbdErr).toString('utf8')).slice(0, 2000) }, 'qemu-nbd did not serve the image');
      nbd.kill('SIGKILL');
      await entry.exit;
      throw new Error(signal?.aborted ? 'cancelled' : 'the image could not be served (see the server log)');
    }
    fs.lchownSync(sock, who.uid, who.gid);
    return sock;
  }

  /**
   * Gives back what a crash left lent to qemu-img (server start, before any copy); returns how many
   * files went back. Nothing to do without a run directory (no lends are made then).
   */
  recoverLent(): number {
    if (!this.lender) return 0;
    const { restored, skipped } = this.lender.recover();
    if (restored.length) this.log.warn({ files: restored }, 'files lent to qemu-img by a copy a restart cut short were given back');
    if (skipped.length) this.log.warn({ files: skipped }, 'files lent to qemu-img by an interrupted copy are gone or were replaced; nothing given back for them');
    return restored.length;
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
  private async inspect(fd: number, format: SourceFormat, args: string[], shown: string): Promise<string> {
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

  // --- backups: restore, verify, delete, import (issue 13) ---------------------------------------

  /**
   * `qemu-img check` of one file under `root` (a backup target), read like info(): the server opens
   * it below the root (no symlink followed), checks its header, a root qemu-nbd serves that
   * descriptor read-only as raw, and qemu-img runs as the unprivileged user with the format given and
   * `backing: null` (the file alone). Exit 0 is clean; 2 (corruptions) and 3 (leaks) are findings.
   */
  async check(file: string, format: ImageFormat, opts: { root: string }): Promise<ImageCheckResult> {
    const roots = new StorageRoots([opts.root]);
    return this.limited(async () => {
      const opened = roots.openFile(file, 'disk', fs.constants.O_RDONLY);
      try {
        await nextLayer(opened.fd, opened.real, format);
        const who = await this.user();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-img-'));
        const nbds: ChildProcess[] = [];
        try {
          if (who) fs.chmodSync(dir, 0o711);
          const sock = await this.backupServe(opened.fd, opened.real, dir, who, nbds);
          const spec = { driver: format, ...(format === 'qcow2' ? { backing: null } : {}), file: { driver: 'nbd', server: { type: 'unix', path: sock } } };
          const r = await this.backupRun(['check', '--output=json', '-U', `json:${JSON.stringify(spec)}`], [], who, { timeoutMs: this.createTimeoutMs });
          if (r.signal === 'SIGKILL') throw this.tooSlow(opened.real);
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(r.stdout) as Record<string, unknown>;
          } catch {
            // no JSON: qemu-img could not check it at all
          }
          const corruptions = num(parsed.corruptions) ?? 0;
          const leaks = num(parsed.leaks) ?? 0;
          const end = num(parsed['image-end-offset']);
          if (r.code === 0 && corruptions === 0) return { ok: true, message: 'no errors', ...(end !== undefined ? { imageEndOffset: end } : {}) };
          this.log.warn({ file: opened.real, code: r.code, stderr: cleanMessage(r.stderr).slice(0, 2000) }, 'qemu-img check found problems');
          if (r.code === 2 || r.code === 3 || corruptions || leaks) {
            return { ok: false, message: `qemu-img check found ${corruptions} corruption(s) and ${leaks} leaked cluster(s)` };
          }
          return { ok: false, message: 'qemu-img check could not read it as a qcow2 image' };
        } finally {
          for (const n of nbds) n.kill('SIGKILL');
          fs.rmSync(dir, { recursive: true, force: true });
        }
      } finally {
        fs.closeSync(opened.fd);
      }
    });
  }

  /**
   * A backup chain flattened into a new self-contained qcow2 at `target`. The server opens every
   * layer below the root and checks it (openImageLayers); qemu-img, as the unprivileged user, is
   * given each layer explicitly as one nested json spec (`backing: null` under the base), so it
   * never opens a name from a header. When the server is root, qemu-img cannot reopen root's files
   * through /proc/self/fd, and a chain cannot be read over NBD (QEMU resolves each layer's relative
   * backing name against an NBD node and fails), so each layer is first copied byte for byte (no
   * parsing) into a private file of that user next to the target, and those copies are what it
   * reads: the backup files themselves are never lent to it. The target is written through a
   * descriptor the server created (O_EXCL), checked to be self-contained, and given back to root.
   */
  async flatten(source: ChainSource, target: string, opts: ChainOptions = {}): Promise<void> {
    const who = await this.user();
    await this.withChain(source, target, who, opts, async (chain, stdio, total) => {
      const out = fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      try {
        if (who) fs.fchownSync(out, who.uid, who.gid);
        const r = await this.backupRun(['convert', '-p', '-O', 'qcow2', `json:${JSON.stringify(chain(4))}`, '/proc/self/fd/3'], [out, ...stdio], who, {
          ...(opts.signal ? { signal: opts.signal } : {}),
          progress: (pct) => opts.progress?.(Math.round((pct / 100) * total), total),
        });
        if (opts.signal?.aborted) throw new Error('cancelled');
        if (r.code !== 0) {
          this.log.warn({ file: source.file, target, code: r.code, signal: r.signal, stderr: cleanMessage(r.stderr).slice(0, 2000) }, 'qemu-img convert (flatten) failed');
          throw new Error('qemu-img convert failed (see the server log)');
        }
        if (who) fs.fchownSync(out, 0, 0);
        fs.fchmodSync(out, 0o600);
        if ((await nextLayer(out, target, 'qcow2')) !== null) throw new Error('the copy names a backing file');
        opts.progress?.(total, total);
      } finally {
        fs.closeSync(out);
      }
    });
  }

  /**
   * `source`'s view re-based onto `base`: the top file is copied byte for byte to `target` (O_EXCL),
   * then qemu-img (unprivileged) runs a safe `rebase` of it with its old chain and the new base chain
   * both given explicitly (layers read as in flatten), writing every cluster where they differ; a
   * second, header-only `rebase -u` records `base.name` (format qcow2). The result must name exactly
   * that backing file before it is given back to root.
   */
  async rebase(source: ChainSource, base: { file: string; name: string }, target: string, opts: ChainOptions = {}): Promise<void> {
    const who = await this.user();
    const baseSource: ChainSource = { file: base.file, root: source.root, ...(source.checkBacking ? { checkBacking: source.checkBacking } : {}) };
    await this.withChain(source, `${target}.old`, who, opts, async (oldChain, oldFds, total) => {
      await this.withChain(baseSource, `${target}.base`, who, opts, async (baseChain, baseFds) => {
        const top = new StorageRoots([source.root]).openFile(source.file, 'disk', fs.constants.O_RDONLY);
        let out: number;
        try {
          opts.partial?.(target);
          out = fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          try {
            copyFd(top.fd, out);
          } catch (err) {
            fs.closeSync(out);
            throw err;
          }
        } finally {
          fs.closeSync(top.fd);
        }
        try {
          if (who) fs.fchownSync(out, who.uid, who.gid);
          // The old chain below the top: layers 1.. of `source`, at fds 4...; the new base after them.
          // The target is fd 3 (in place of the top layer), the old layers 1.. at fd 3 + i, then the
          // new base's layers: oldChain(4) numbers layer i at 4 + i, hence the shift by one.
          const fds = [out, ...oldFds.slice(1), ...baseFds];
          const old = oldChain(4) as { backing: unknown };
          const shifted = { driver: 'qcow2', file: { driver: 'file', filename: '/proc/self/fd/3', locking: 'off' }, backing: renumber(old.backing, -1) };
          const newBaseShifted = renumber(baseChain(4 + oldFds.length), -1);
          const r = await this.backupRun(['rebase', '-q', '-F', 'qcow2', '-b', `json:${JSON.stringify(newBaseShifted)}`, `json:${JSON.stringify(shifted)}`], fds, who, {
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
          if (opts.signal?.aborted) throw new Error('cancelled');
          if (r.code !== 0) {
            this.log.warn({ file: source.file, target, code: r.code, signal: r.signal, stderr: cleanMessage(r.stderr).slice(0, 2000) }, 'qemu-img rebase failed');
            throw new Error('qemu-img rebase failed (see the server log)');
          }
          const header = { driver: 'qcow2', file: { driver: 'file', filename: '/proc/self/fd/3', locking: 'off' } };
          const u = await this.backupRun(['rebase', '-q', '-u', '-F', 'qcow2', '-b', base.name, `json:${JSON.stringify(header)}`], [out], who, { timeoutMs: this.createTimeoutMs });
          if (u.code !== 0) {
            this.log.warn({ target, code: u.code, stderr: cleanMessage(u.stderr).slice(0, 2000) }, 'qemu-img rebase -u failed');
            throw new Error('qemu-img rebase failed (see the server log)');
          }
          if (who) fs.fchownSync(out, 0, 0);
          fs.fchmodSync(out, 0o600);
          const next = await nextLayer(out, target, 'qcow2');
          if (!next || next.format !== 'qcow2' || next.file !== path.resolve(path.dirname(target), base.name)) throw new Error('the rebased file does not name the new backing file');
          opts.progress?.(total, total);
        } finally {
          fs.closeSync(out);
        }
      });
    });
  }

  /**
   * Opens and checks the chain of `source` below its root, makes the private copies the
   * unprivileged user reads (when root), and calls `fn` with a function giving the nested json spec
   * (layer i at `/proc/self/fd/<first + i>`), the descriptors in that order, and the virtual size.
   */
  private async withChain(
    source: ChainSource,
    stem: string,
    who: QemuIdentity | null,
    opts: ChainOptions,
    fn: (chain: (first: number) => Record<string, unknown>, fds: number[], total: number) => Promise<void>,
  ): Promise<void> {
    const roots = new StorageRoots([source.root]);
    const layers = await openImageLayers(roots, source.file, 'qcow2', source.checkBacking ? { checkBacking: source.checkBacking } : {});
    const copies: Array<{ file: string; fd: number }> = [];
    try {
      const total = qcow2Size(layers[0]!.fd);
      if (who) {
        for (const [i, l] of layers.entries()) {
          const file = `${stem}.layer${i}`;
          opts.partial?.(file);
          const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          copies.push({ file, fd });
          copyFd(l.fd, fd);
          fs.fchownSync(fd, who.uid, who.gid);
        }
      }
      const fds = who ? copies.map((c) => c.fd) : layers.map((l) => l.fd);
      const chain = (first: number) => {
        let spec: Record<string, unknown> | null = null;
        for (let i = layers.length - 1; i >= 0; i--) {
          spec = { driver: layers[i]!.format, file: { driver: 'file', filename: `/proc/self/fd/${first + i}`, locking: 'off' }, ...(layers[i]!.format === 'qcow2' ? { backing: spec } : {}) };
        }
        return spec!;
      };
      await fn(chain, fds, total);
    } finally {
      for (const l of layers) fs.closeSync(l.fd);
      for (const c of copies) {
        fs.closeSync(c.fd);
        fs.rmSync(c.file, { force: true });
      }
    }
  }

  /** A root qemu-nbd serving `fd` read-only as raw on a socket of `who`'s in `dir`; returns its path. */
  private async backupServe(fd: number, shown: string, dir: string, who: QemuIdentity | null, nbds: ChildProcess[]): Promise<string> {
    const sock = path.join(dir, `${crypto.randomBytes(12).toString('hex')}.sock`);
    const nbd = spawn(
      ...withParentDeath(this.nbdBinary, ['--read-only', '--shared=1', '--image-opts', '--socket', sock, 'driver=raw,file.driver=file,file.filename=/proc/self/fd/3,file.locking=off']),
      { stdio: ['ignore', 'ignore', 'pipe', fd] },
    );
    nbds.push(nbd);
    const err = collect(nbd.stderr!, 64 << 10);
    if (!(await this.socketUp(sock, nbd))) {
      this.log.warn({ file: shown, stderr: cleanMessage(err()).slice(0, 2000) }, 'qemu-nbd did not serve the image');
      throw this.unreadable(shown, 'the image could not be served');
    }
    if (who) fs.lchownSync(sock, who.uid, who.gid);
    return sock;
  }

  /** Runs qemu-img as `who` (or the server's user) with `fds` at 3, 4, ...; killed on abort or at the deadline. */
  private async backupRun(
    args: string[],
    fds: number[],
    who: QemuIdentity | null,
    opts: { signal?: AbortSignal; timeoutMs?: number; progress?: (pct: number) => void },
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    const child = spawn(...withParentDeath(this.binary, args), {
      stdio: ['ignore', 'pipe', 'pipe', ...fds],
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      ...(who ? { uid: who.uid, gid: who.gid } : {}),
    });
    const kill = () => child.kill('SIGKILL');
    const timer = opts.timeoutMs ? setTimeout(kill, opts.timeoutMs) : null;
    if (opts.signal?.aborted) kill();
    else opts.signal?.addEventListener('abort', kill, { once: true });
    const out = collect(child.stdout!, 1 << 20);
    let tail = '';
    if (opts.progress) {
      child.stdout!.on('data', (b: Buffer) => {
        tail = (tail + b.toString('latin1')).slice(-200);
        const all = [...tail.matchAll(/\((\d{1,3}(?:\.\d+)?)\/100%\)/g)];
        const pct = all.length ? Number(all[all.length - 1]![1]) : NaN;
        if (Number.isFinite(pct)) opts.progress?.(Math.min(pct, 100));
      });
    }
    const err = collect(child.stderr!, 64 << 10);
    const result = await exited(child).finally(() => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
    });
    return { ...result, stdout: out(), stderr: err() };
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


// --- backups: restore, verify, delete, import (issue 13) ---
/** Copies every byte of `from` into `to` (both descriptors; holes read as zeros, no parsing). */
function copyFd(from: number, to: number): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  for (;;) {
    const n = fs.readSync(from, buf, 0, buf.length, pos);
    if (n === 0) break;
    let w = 0;
    while (w < n) w += fs.writeSync(to, buf, w, n - w, pos + w);
    pos += n;
  }
  fs.fsyncSync(to);
}

/** The virtual size a qcow2 header records (checked already by nextLayer). */
function qcow2Size(fd: number): number {
  const h = Buffer.alloc(32);
  fs.readSync(fd, h, 0, 32, 0);
  return Number(h.readBigUInt64BE(24));
}

/** A nested layer spec with every `/proc/self/fd/N` moved by `by`. */
function renumber(spec: unknown, by: number): unknown {
  if (spec === null || typeof spec !== 'object') return spec;
  const o = { ...(spec as Record<string, unknown>) };
  const file = o.file as Record<string, unknown> | undefined;
  if (file && typeof file.filename === 'string') {
    const m = /^\/proc\/self\/fd\/(\d+)$/.exec(file.filename);
    if (m) o.file = { ...file, filename: `/proc/self/fd/${Number(m[1]) + by}` };
  }
  if ('backing' in o) o.backing = renumber(o.backing, by);
  return o;
}
