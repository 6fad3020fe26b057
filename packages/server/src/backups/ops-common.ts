import { BackupManifest, type BackupDisk } from '@qemu-manager/contract';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import { nextLayer } from '../lib/image-check.js';
import type { Logger } from '../lib/log.js';
import { StorageRoots } from '../lib/storage.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskService } from '../tasks/service.js';
import type { VmContext } from '../vms/context.js';
import type { BackupRecord, BackupRepo } from './repo.js';

/**
 * What restore, verify, delete and import (issue 13) share: the targets, the layout rules of a
 * backup directory, the manifest read and the per-file checks.
 */
export interface BackupOpsDeps {
  repo: BackupRepo;
  vm: VmContext;
  images: ImageTool;
  tasks: TaskService;
  bus: EventBus;
  log: Logger;
  dataDir: string;
  disksDir: string;
  /** The backup targets (`default` and the admin's), by their real paths. */
  targets: { all(): Target[] };
  /** Names (`vm:<name>`, `disk:<name>`) in flight, shared with clones, conversions and imports. */
  reserved: Set<string>;
}

export const MANIFEST = 'manifest.json';

// The formats the contract's schemas use, for Value.Check (Fastify's Ajv has its own).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
if (!FormatRegistry.Has('uuid')) FormatRegistry.Set('uuid', (v) => UUID.test(v));
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)));
const MANIFEST_MAX_BYTES = 1 << 20;
const DISK_FILE = /^disk(\d{1,4})\.qcow2$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface Target {
  name: string;
  /** Its real path. */
  path: string;
}

/** The target directory a backup directory lies in (`<target>/<vm>/<id>`). */
export function rootOf(b: Pick<BackupRecord, 'dir'>): string {
  return path.dirname(path.dirname(b.dir));
}

export function requireBackup(repo: BackupRepo, id: string): BackupRecord {
  const b = repo.get(id);
  if (!b) throw new AppError('BACKUP_NOT_FOUND', `Backup not found: ${id}`);
  return b;
}

/**
 * A backup's chain rule for the image tool: every backing layer of a file of this backup must be a
 * `disk<N>.qcow2` of a backup directory of the same VM in the same target (never a disk, never
 * anything else in the target).
 */
export function backupChainRule(b: Pick<BackupRecord, 'dir'>): (real: string, index: number) => void {
  const vmDir = path.dirname(b.dir);
  return (real) => {
    const rel = path.relative(vmDir, real).split(path.sep);
    if (rel.length !== 2 || !ID.test(rel[0]!) || !DISK_FILE.test(rel[1]!)) {
      throw new AppError('IMAGE_NOT_ALLOWED', `${real} is not a file of a backup of this VM; a backup file may back onto its parent backup's files only`);
    }
  };
}

/** Reads and validates `<dir>/manifest.json` (no symlink followed, size-bounded, the contract schema). */
export function readManifest(dir: string): BackupManifest {
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, MANIFEST), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AppError('FILE_NOT_FOUND', `${dir} has no ${MANIFEST}`);
    throw new AppError('IMAGE_NOT_ALLOWED', `${dir}/${MANIFEST} cannot be opened (${code ?? 'error'}); it must be a plain file`);
  }
  let text: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new AppError('NOT_A_REGULAR_FILE', `${dir}/${MANIFEST} is not a regular file`);
    if (st.size > MANIFEST_MAX_BYTES) throw new AppError('VALIDATION', `${dir}/${MANIFEST} is larger than ${MANIFEST_MAX_BYTES} bytes`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < st.size) {
      const r = fs.readSync(fd, buf, n, st.size - n, n);
      if (r === 0) break;
      n += r;
    }
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AppError('VALIDATION', `${dir}/${MANIFEST} is not JSON`);
  }
  if (!Value.Check(BackupManifest, json)) {
    const first = [...Value.Errors(BackupManifest, json)][0];
    throw new AppError('VALIDATION', `${dir}/${MANIFEST} is not a backup manifest (schema 1)${first ? `: ${first.path || '/'} ${first.message}` : ''}`);
  }
  return json;
}

/**
 * The layout rules for the disks a manifest lists: plain names `disk<N>.qcow2` with N the disk's
 * index (each once), a sha256 in hex; a full names no backing file, an incremental names exactly
 * `../<parent>/disk<N>.qcow2`.
 */
export function checkManifestDisks(m: BackupManifest, dir: string): void {
  const seen = new Set<number>();
  if (m.disks.length === 0) throw new AppError('VALIDATION', `${dir}/${MANIFEST} lists no disk`);
  if (m.kind === 'full' && m.parent !== null) throw new AppError('VALIDATION', `${dir}/${MANIFEST}: a full backup has no parent`);
  if (m.kind === 'incremental' && m.parent === null) throw new AppError('VALIDATION', `${dir}/${MANIFEST}: an incremental backup names its parent`);
  for (const d of m.disks) {
    const match = DISK_FILE.exec(d.file);
    if (!match || Number(match[1]) !== d.index) {
      throw new AppError('VALIDATION', `${dir}/${MANIFEST} names the file ${JSON.stringify(d.file.slice(0, 100))} for disk ${d.index}; files are named disk<index>.qcow2`);
    }
    if (seen.has(d.index)) throw new AppError('VALIDATION', `${dir}/${MANIFEST} lists disk ${d.index} twice`);
    seen.add(d.index);
    if (!/^[0-9a-f]{64}$/.test(d.sha256)) throw new AppError('VALIDATION', `${dir}/${MANIFEST}: disk ${d.index} has no sha256 in hex`);
    const want = m.kind === 'full' ? null : `../${m.parent}/disk${d.index}.qcow2`;
    if (d.backing !== want) {
      throw new AppError('VALIDATION', `${dir}/${MANIFEST}: disk ${d.index} must name ${want === null ? 'no backing file (a full backup)' : `the backing file ${want}`}`);
    }
  }
}

/** sha256 (hex) and size of an open file, read to its end. */
export async function hashFd(fd: number, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const h = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  for (;;) {
    if (signal?.aborted) throw new Error('cancelled');
    const n = await new Promise<number>((resolve, reject) => fs.read(fd, buf, 0, buf.length, pos, (err, r) => (err ? reject(err) : resolve(r))));
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return { sha256: h.digest('hex'), bytes: pos };
}

/** Opens a file of a backup directory below its target (no symlink followed anywhere). */
export function openBackupFile(root: string, file: string): { fd: number; real: string } {
  const opened = new StorageRoots([root]).openFile(file, 'disk', fs.constants.O_RDONLY);
  return { fd: opened.fd, real: opened.real };
}

/** One disk file of a backup: sha256 and size as the manifest says, headers as its kind requires. */
export async function checkDiskFile(
  root: string,
  dir: string,
  d: BackupDisk,
  signal?: AbortSignal,
): Promise<void> {
  const file = path.join(dir, d.file);
  const { fd, real } = openBackupFile(root, file);
  try {
    if (real !== file) throw new AppError('IMAGE_NOT_ALLOWED', `${file} is reached through a symlink`);
    const next = await nextLayer(fd, real, 'qcow2');
    const want = d.backing === null ? null : path.resolve(dir, d.backing);
    if ((next?.file ?? null) !== want || (next !== null && next.format !== 'qcow2')) {
      throw new AppError('IMAGE_NOT_ALLOWED', `${file}: its header names ${next ? `the backing file ${next.file} (${next.format})` : 'no backing file'}, the manifest ${want ?? 'none'}`);
    }
    const { sha256, bytes } = await hashFd(fd, signal);
    if (sha256 !== d.sha256) throw new AppError('IMAGE_NOT_ALLOWED', `${file}: sha256 ${sha256} does not match the manifest's ${d.sha256}`);
    if (bytes !== d.sizeBytes) throw new AppError('IMAGE_NOT_ALLOWED', `${file}: ${bytes} bytes, the manifest says ${d.sizeBytes}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `text` to `file` (new, O_EXCL) and fsyncs it. */
export function writeNew(file: string, text: string): void {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
