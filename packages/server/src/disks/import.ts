import { DISK_NAME_PATTERN, type DiskFormat, type ImportDiskBody, type Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import type { SourceFormat } from '../lib/image-check.js';
import type { StorageRoots } from '../lib/storage.js';
import { nowIso } from '../lib/time.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskContext, TaskService } from '../tasks/service.js';
import { download } from './download.js';
import { checkSelfContained, intakeFormat, type IntakeWords } from './image-intake.js';
import type { DiskRepo } from './repo.js';
import { EXTENSIONS } from './service.js';

const NAME = new RegExp(DISK_NAME_PATTERN);
const GiB = 1024 ** 3;
const PARTIAL = '.part';
const IMPORT_PREFIX = '.import-';
/** An .ova is read header by header: at most this many members, at most this many disks. */
const MAX_TAR_MEMBERS = 10_000;
const MAX_OVA_DISKS = 16;

const words = (label: string): IntakeWords => ({
  label,
  isoLabel: label,
  isoAdvice: 'add it to the ISO library instead (PUT /api/isos/{name})',
  backingAdvice: 'import a self-contained image (qemu-img convert -O qcow2 <image> <new.qcow2>)',
});

/** One image to convert: the downloaded file, or one vmdk member extracted from an .ova. */
interface Source {
  file: string;
  /** vdi and vhdx too: every import is converted into `format`. */
  format: SourceFormat;
  bytes: number;
  name: string;
  target: string;
}

/**
 * Disk import (issue 10): `POST /api/disks/import { name, url, sha256?, format? }` starts a
 * `disk.import` task that downloads the URL (http or https, any host the server can reach, at most
 * 5 redirects, each http(s)) into a hidden temp file in the disk directory, bounded by the upload
 * size limit and an idle timeout, with progress (bytesTotal from Content-Length when given);
 * checks the SHA-256 when one was given; then takes the file like an upload (format from its own
 * header, self-contained, read by qemu-img the unprivileged way) and converts it into a new managed
 * disk of `format` (default qcow2) with the image tool's safe copy. An .ova (a tar: "ustar" at 257)
 * is read header by header without using any name from it as a path: each vmdk member is copied out
 * to a temp file of the server's choosing (sizes bounded by the archive's own size), checked and
 * converted into the disk `<name>-disk<N>`. Every file is the task's partial file until the disks
 * are registered, together, at the end: a failure, a cancel or a crash leaves nothing.
 */
export class DiskImports {
  constructor(
    private readonly deps: {
      repo: DiskRepo;
      images: ImageTool;
      bus: EventBus;
      storage: StorageRoots;
      tasks: TaskService;
      dir: string;
      maxBytes: number;
      idleMs: number;
      /** Names (`disk:<name>`) that tasks in flight will take: shared with clones and conversions. */
      reserved: Set<string>;
    },
  ) {}

  start(body: ImportDiskBody): { task: Task } {
    const { repo, tasks, dir } = this.deps;
    let url: URL;
    try {
      url = new URL(body.url);
    } catch {
      throw new AppError('VALIDATION', 'url must be an absolute http:// or https:// URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AppError('VALIDATION', `url must be http:// or https://, not ${url.protocol}`);
    }
    const format: DiskFormat = body.format ?? 'qcow2';
    if (repo.nameTaken(body.name) || this.deps.reserved.has(`disk:${body.name}`)) throw new AppError('NAME_TAKEN', `A disk named ${body.name} already exists`);
    const file = path.join(dir, `${body.name}.${EXTENSIONS[format]}`);
    if (fs.existsSync(file) || fs.existsSync(file + PARTIAL)) {
      throw new AppError('NAME_TAKEN', `A file named ${path.basename(file)} already exists in the disk directory`);
    }
    this.deps.reserved.add(`disk:${body.name}`);
    try {
      const task = tasks.start('disk.import', {}, async (tctx) => {
        try {
          return await this.run(url, body.name, format, body.sha256?.toLowerCase() ?? null, tctx);
        } finally {
          this.deps.reserved.delete(`disk:${body.name}`);
        }
      });
      return { task };
    } catch (err) {
      this.deps.reserved.delete(`disk:${body.name}`);
      throw err;
    }
  }

  private async run(url: URL, name: string, format: DiskFormat, sha256: string | null, tctx: TaskContext): Promise<Record<string, unknown>> {
    const { repo, images, bus, storage, dir } = this.deps;
    const temps: string[] = [];
    const temp = () => {
      const f = path.join(dir, `${IMPORT_PREFIX}${crypto.randomUUID()}`);
      tctx.partial(f);
      temps.push(f);
      return f;
    };
    try {
      const downloaded = temp();
      const got = await this.download(url, downloaded, tctx);
      if (sha256 !== null && got.sha256 !== sha256) throw new Error(`sha256 mismatch: expected ${sha256} got ${got.sha256}`);

      // What to convert: the file itself, or the vmdk disks of an .ova.
      const sources: Source[] = [];
      if (isTar(downloaded)) {
        const members = vmdkMembers(downloaded, got.bytes);
        if (members.length === 0) throw new AppError('IMAGE_NOT_ALLOWED', 'The downloaded .ova holds no vmdk disk');
        if (members.length > MAX_OVA_DISKS) throw new AppError('IMAGE_NOT_ALLOWED', `The downloaded .ova holds ${members.length} disks; at most ${MAX_OVA_DISKS} are imported at once`);
        for (const [i, m] of members.entries()) {
          const diskName = `${name}-disk${i}`;
          if (!NAME.test(diskName)) throw new AppError('VALIDATION', `The disk name ${diskName} is too long; choose a shorter name for the .ova import`);
          const out = temp();
          await pipeline(fs.createReadStream(downloaded, { start: m.offset, end: m.offset + m.size - 1 }), fs.createWriteStream(out, { flags: 'wx', mode: 0o600 }), { signal: tctx.signal });
          const label = `disk ${i} of the downloaded .ova`;
          const seen = await intakeFormat(out, words(label));
          if (seen !== 'vmdk') throw new AppError('IMAGE_NOT_ALLOWED', `${label[0]!.toUpperCase()}${label.slice(1)} is not a vmdk image (${seen})`);
          await checkSelfContained(storage, out, seen, words(label));
          sources.push({ file: out, format: seen, bytes: 0, name: diskName, target: path.join(dir, `${diskName}.${EXTENSIONS[format]}`) });
        }
        fs.rmSync(downloaded, { force: true }); // its disks are out: no need for twice the space
      } else {
        const seen = await intakeFormat(downloaded, words('the downloaded image'));
        await checkSelfContained(storage, downloaded, seen, words('the downloaded image'));
        sources.push({ file: downloaded, format: seen, bytes: 0, name, target: path.join(dir, `${name}.${EXTENSIONS[format]}`) });
      }
      for (const s of sources) {
        if (repo.nameTaken(s.name) || (s.name !== name && this.deps.reserved.has(`disk:${s.name}`))) throw new AppError('NAME_TAKEN', `A disk named ${s.name} already exists`);
        s.bytes = (await images.info(s.file, s.format))['virtual-size'];
      }

      // Convert each into its new file (`<target>.part`), with progress after the download's.
      const total = got.bytes + sources.reduce((n, s) => n + s.bytes, 0);
      let done = got.bytes;
      tctx.progress(done, total);
      for (const s of sources) {
        const part = s.target + PARTIAL;
        if (fs.existsSync(s.target)) throw new AppError('NAME_TAKEN', `A file named ${path.basename(s.target)} already exists in the disk directory`);
        tctx.partial(part);
        const before = done;
        await images.copy({ file: s.file, format: s.format }, part, {
          signal: tctx.signal,
          progress: (d) => tctx.progress(before + Math.min(d, s.bytes), total),
          format,
        });
        if (tctx.signal.aborted) throw new Error('cancelled');
        fs.rmSync(s.file, { force: true });
        done += s.bytes;
      }

      // Move them to their names (never over a file) and register them together.
      for (const s of sources) {
        if (repo.nameTaken(s.name)) throw new AppError('NAME_TAKEN', `A disk named ${s.name} was created meanwhile`);
        tctx.partial(s.target);
        fs.linkSync(s.target + PARTIAL, s.target);
        fs.rmSync(s.target + PARTIAL);
        tctx.kept(s.target + PARTIAL);
      }
      const ids = sources.map(() => crypto.randomUUID());
      const at = nowIso();
      repo.transaction(() => {
        sources.forEach((s, i) => {
          repo.insertReady({ id: ids[i]!, name: s.name, size: Math.max(1, Math.ceil(s.bytes / GiB)), format, path: s.target, created_at: at });
        });
      });
      for (const s of sources) tctx.kept(s.target);
      tctx.target({ disk: ids[0]! });
      for (const id of ids) {
        const disk = repo.get(id);
        if (disk) bus.publish({ type: 'disk.created', disk });
      }
      return sources.length === 1 && sources[0]!.name === name ? { disk: ids[0]! } : { disks: ids };
    } finally {
      for (const f of temps) {
        fs.rmSync(f, { force: true });
        tctx.kept(f);
      }
    }
  }

  /**
   * Downloads `url` into the new file `out` (following at most 5 http(s) redirects), at most
   * maxBytes, aborted after idleMs without a byte or by the task's cancel. Returns its size and hash.
   */
  private async download(start: URL, out: string, tctx: TaskContext): Promise<{ bytes: number; sha256: string }> {
    const got = await download(start, out, {
      signal: tctx.signal,
      maxBytes: this.deps.maxBytes,
      idleMs: this.deps.idleMs,
      progress: (done, total) => tctx.progress(done, total),
    });
    return { bytes: got.bytes, sha256: got.hashes.sha256! };
  }
}

/** A POSIX tar ("ustar" at 257): how an .ova is recognised. */
function isTar(file: string): boolean {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const h = Buffer.alloc(512);
    return fs.readSync(fd, h, 0, 512, 0) === 512 && h.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The vmdk members of a tar, in archive order: regular files whose name ends in `.vmdk` or whose
 * data starts with the sparse vmdk magic. Each header's checksum is verified and every member must
 * lie inside the file; names are only compared, never used as paths.
 */
function vmdkMembers(file: string, size: number): Array<{ offset: number; size: number }> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const out: Array<{ offset: number; size: number }> = [];
    const h = Buffer.alloc(512);
    let pos = 0;
    for (let n = 0; pos + 512 <= size; n++) {
      if (n >= MAX_TAR_MEMBERS) throw new AppError('IMAGE_NOT_ALLOWED', `The downloaded .ova has more than ${MAX_TAR_MEMBERS} members`);
      fs.readSync(fd, h, 0, 512, pos);
      if (h.every((b) => b === 0)) break; // the end-of-archive blocks
      if (!checksumOk(h)) throw new AppError('IMAGE_NOT_ALLOWED', `The downloaded .ova is not a valid tar (bad header at byte ${pos})`);
      const len = tarSize(h);
      const data = pos + 512;
      if (len === null || data + len > size) throw new AppError('IMAGE_NOT_ALLOWED', `The downloaded .ova is truncated or damaged (member at byte ${pos})`);
      const type = h[156];
      if ((type === 0x30 || type === 0) && len > 0) {
        const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
        const magic = Buffer.alloc(4);
        fs.readSync(fd, magic, 0, 4, data);
        if (/\.vmdk$/i.test(name) || magic.toString('latin1') === 'KDMV') out.push({ offset: data, size: len });
      }
      pos = data + Math.ceil(len / 512) * 512;
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(h.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return Number.isFinite(stored) && stored === sum;
}

/** The member size: 11 octal digits, or the base-256 form (high bit set) for large members. */
function tarSize(h: Buffer): number | null {
  const field = h.subarray(124, 136);
  if (field[0]! & 0x80) {
    let v = 0n;
    for (let i = 1; i < 12; i++) v = (v << 8n) | BigInt(field[i]!);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/g, '').trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : text === '' ? 0 : null;
}
