import type { BackupTarget, CreateBackupTargetBody } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import type { Db } from '../store/sqlite.js';
import type { BackupRepo } from './repo.js';

/** The target every server has: `$DATA_DIR/backups`. */
export const DEFAULT_TARGET = 'default';

export interface ResolvedTarget {
  name: string;
  /** The real path of its directory. */
  path: string;
}

/**
 * Backup targets (issue 13, engine): `$DATA_DIR/backups` (always present, `default`) and the
 * directories the admin adds. A target is an existing directory named by an absolute path, taken
 * by its real path (so a symlink cannot make it point elsewhere later under the same name), never
 * the data dir itself nor inside its disks, ISO or run directories, nor inside a storage root
 * (backup files must never be mistaken for disks a VM may attach, and a guest-written backup file
 * must never sit where images are picked from).
 */
export class BackupTargets {
  private readonly defaultPath: string;
  private readonly scheduleUses;

  constructor(
    private readonly repo: BackupRepo,
    db: Db,
    private readonly dirs: { dataDir: string; disks: string; isos: string; run: string },
    /** The storage roots (real paths) images may come from. */
    private readonly roots: readonly string[],
  ) {
    const dflt = path.join(dirs.dataDir, 'backups');
    fs.mkdirSync(dflt, { recursive: true, mode: 0o700 });
    fs.chmodSync(dflt, 0o700);
    this.defaultPath = fs.realpathSync(dflt);
    this.scheduleUses = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM backup_schedules WHERE target = ?');
  }

  list(): BackupTarget[] {
    return [{ name: DEFAULT_TARGET, path: this.defaultPath }, ...this.repo.targets()].map((t) => this.shape(t.name, t.path));
  }

  get(name: string): BackupTarget {
    const t = this.resolve(name);
    return this.shape(t.name, t.path);
  }

  /** The target `name` (default: `default`); TARGET_NOT_FOUND when there is none of that name. */
  resolve(name?: string): ResolvedTarget {
    if (name === undefined || name === DEFAULT_TARGET) return { name: DEFAULT_TARGET, path: this.defaultPath };
    const row = this.repo.target(name);
    if (!row) throw new AppError('TARGET_NOT_FOUND', `Backup target not found: ${name}`);
    return { name: row.name, path: row.path };
  }

  /** Every target, for the checks at server start. */
  all(): ResolvedTarget[] {
    return [{ name: DEFAULT_TARGET, path: this.defaultPath }, ...this.repo.targets().map((t) => ({ name: t.name, path: t.path }))];
  }

  add(body: CreateBackupTargetBody): BackupTarget {
    const input = body.path;
    if (input.includes('\0')) throw new AppError('VALIDATION', 'The target path contains a NUL byte');
    if (!path.isAbsolute(input)) throw new AppError('VALIDATION', `The target path must be absolute: ${input}`);
    let real: string;
    try {
      real = fs.realpathSync(input);
    } catch {
      throw new AppError('VALIDATION', `The target directory does not exist: ${input}`);
    }
    if (!fs.statSync(real).isDirectory()) throw new AppError('VALIDATION', `The target path is not a directory: ${input}`);
    const shown = real === path.resolve(input) ? input : `${input} (${real})`;
    const own = (d: string) => realOr(d);
    if (real === own(this.dirs.dataDir)) throw new AppError('PATH_NOT_ALLOWED', `The target cannot be the data directory itself: ${shown}`);
    for (const [what, dir] of [
      ['the disk directory', this.dirs.disks],
      ['the ISO library', this.dirs.isos],
      ['the run directory', this.dirs.run],
    ] as const) {
      if (within(own(dir), real)) throw new AppError('PATH_NOT_ALLOWED', `The target cannot be inside ${what} (${own(dir)}): ${shown}`);
    }
    for (const root of this.roots) {
      if (within(root, real)) throw new AppError('PATH_NOT_ALLOWED', `The target cannot be inside the storage root ${root}: ${shown}`);
    }
    if (body.name === DEFAULT_TARGET || this.repo.target(body.name)) throw new AppError('NAME_TAKEN', `A backup target named ${body.name} already exists`);
    const same = this.all().find((t) => t.path === real);
    if (same) throw new AppError('NAME_TAKEN', `The directory ${real} is already the backup target ${same.name}`);
    this.repo.addTarget({ name: body.name, path: real, created_at: nowIso() });
    return this.shape(body.name, real);
  }

  /** Forgets a target (its directory and files stay); refused while backups or schedules use it. */
  remove(name: string): void {
    if (name === DEFAULT_TARGET) throw new AppError('TARGET_IN_USE', 'The default backup target cannot be removed');
    const t = this.resolve(name);
    const listed = this.repo.list({ target: t.name }).length;
    if (listed) throw new AppError('TARGET_IN_USE', `The backup target ${name} holds ${listed} listed backup${listed === 1 ? '' : 's'}; delete them first`);
    const schedules = this.scheduleUses.get(t.name)?.n ?? 0;
    if (schedules) throw new AppError('TARGET_IN_USE', `${schedules} backup schedule${schedules === 1 ? ' writes' : 's write'} to the target ${name}; change them first`);
    this.repo.deleteTarget(t.name);
  }

  private shape(name: string, dir: string): BackupTarget {
    let freeBytes: number | null = null;
    let totalBytes: number | null = null;
    try {
      const st = fs.statfsSync(dir);
      freeBytes = Number(st.bavail) * Number(st.bsize);
      totalBytes = Number(st.blocks) * Number(st.bsize);
    } catch {
      // an unmounted NFS share, a removed directory: shown as unknown
    }
    return { name, path: dir, default: name === DEFAULT_TARGET, freeBytes, totalBytes, backups: this.repo.list({ target: name }).length };
  }
}

function realOr(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

/** Whether `p` is `dir` or below it. */
function within(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
