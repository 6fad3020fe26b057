import type { Backup, BackupKind, BackupManifest, BackupState } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

/**
 * The server's index of backups (tables of migration 006): backups, the dirty bitmaps that count
 * changes since a backup, and the targets the admin added. The directories themselves (manifest +
 * files) are the truth; a row exists only for a backup that is complete.
 */

interface BackupRow {
  id: string;
  vm_id: string;
  vm_name: string;
  target: string;
  dir: string;
  created_at: string;
  kind: BackupKind;
  parent_id: string | null;
  size_bytes: number;
  verified_at: string | null;
  state: BackupState;
  frozen: number;
  manifest: string;
}

/** A backup as stored: its public shape plus where it lives and its manifest. */
export interface BackupRecord extends Backup {
  dir: string;
  manifest: BackupManifest;
}

function toRecord(r: BackupRow): BackupRecord {
  const manifest = JSON.parse(r.manifest) as BackupManifest;
  return {
    id: r.id,
    vm: r.vm_id,
    vmName: r.vm_name,
    target: r.target,
    createdAt: r.created_at,
    kind: r.kind,
    parent: r.parent_id,
    sizeBytes: r.size_bytes,
    verifiedAt: r.verified_at,
    state: r.state,
    frozen: r.frozen === 1,
    disks: manifest.disks,
    dir: r.dir,
    manifest,
  };
}

/** The public shape (drops dir and manifest). */
export function publicBackup(b: BackupRecord): Backup {
  const { dir: _dir, manifest: _manifest, ...rest } = b;
  return rest;
}

export interface BitmapRow {
  vm_id: string;
  disk_path: string;
  bitmap: string;
  backup_id: string;
}

export interface TargetRow {
  name: string;
  path: string;
  created_at: string;
}

export class BackupRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      all: db.prepare<[], BackupRow>('SELECT * FROM backups ORDER BY created_at DESC, rowid DESC'),
      one: db.prepare<[string], BackupRow>('SELECT * FROM backups WHERE id = ?'),
      byDir: db.prepare<[string], BackupRow>('SELECT * FROM backups WHERE dir = ?'),
      children: db.prepare<[string], BackupRow>('SELECT * FROM backups WHERE parent_id = ? ORDER BY created_at, rowid'),
      insert: db.prepare(
        `INSERT INTO backups (id, vm_id, vm_name, target, dir, created_at, kind, parent_id, size_bytes, verified_at, state, frozen, manifest)
         VALUES (@id, @vm_id, @vm_name, @target, @dir, @created_at, @kind, @parent_id, @size_bytes, @verified_at, @state, @frozen, @manifest)`,
      ),
      update: db.prepare(
        `UPDATE backups SET kind = @kind, parent_id = @parent_id, size_bytes = @size_bytes, verified_at = @verified_at,
         state = @state, manifest = @manifest WHERE id = @id`,
      ),
      del: db.prepare('DELETE FROM backups WHERE id = ?'),
      bitmaps: db.prepare<[string], BitmapRow>('SELECT * FROM backup_bitmaps WHERE vm_id = ? ORDER BY disk_path'),
      setBitmap: db.prepare(
        `INSERT INTO backup_bitmaps (vm_id, disk_path, bitmap, backup_id) VALUES (@vm_id, @disk_path, @bitmap, @backup_id)
         ON CONFLICT (vm_id, disk_path) DO UPDATE SET bitmap = excluded.bitmap, backup_id = excluded.backup_id`,
      ),
      dropBitmap: db.prepare('DELETE FROM backup_bitmaps WHERE vm_id = ? AND disk_path = ?'),
      dropBitmaps: db.prepare('DELETE FROM backup_bitmaps WHERE vm_id = ?'),
      targets: db.prepare<[], TargetRow>('SELECT * FROM backup_targets ORDER BY name'),
      target: db.prepare<[string], TargetRow>('SELECT * FROM backup_targets WHERE name = ?'),
      addTarget: db.prepare('INSERT INTO backup_targets (name, path, created_at) VALUES (@name, @path, @created_at)'),
      delTarget: db.prepare('DELETE FROM backup_targets WHERE name = ?'),
    };
  }

  /** Newest first, optionally of one VM and/or one target. */
  list(filter: { vm?: string; target?: string } = {}): BackupRecord[] {
    return this.q.all
      .all()
      .filter((r) => (filter.vm === undefined || r.vm_id === filter.vm) && (filter.target === undefined || r.target === filter.target))
      .map(toRecord);
  }

  get(id: string): BackupRecord | null {
    const r = this.q.one.get(id);
    return r ? toRecord(r) : null;
  }

  byDir(dir: string): BackupRecord | null {
    const r = this.q.byDir.get(dir);
    return r ? toRecord(r) : null;
  }

  /** The backups whose parent is `id` (incrementals that need its files). */
  children(id: string): BackupRecord[] {
    return this.q.children.all(id).map(toRecord);
  }

  insert(b: BackupRecord): void {
    this.q.insert.run({
      id: b.id,
      vm_id: b.vm,
      vm_name: b.vmName,
      target: b.target,
      dir: b.dir,
      created_at: b.createdAt,
      kind: b.kind,
      parent_id: b.parent,
      size_bytes: b.sizeBytes,
      verified_at: b.verifiedAt,
      state: b.state,
      frozen: b.frozen ? 1 : 0,
      manifest: JSON.stringify(b.manifest),
    });
  }

  /** Writes back what can change after a backup is made (a verify, a merge of its parent). */
  update(b: BackupRecord): void {
    this.q.update.run({
      id: b.id,
      kind: b.kind,
      parent_id: b.parent,
      size_bytes: b.sizeBytes,
      verified_at: b.verifiedAt,
      state: b.state,
      manifest: JSON.stringify(b.manifest),
    });
  }

  delete(id: string): void {
    this.q.del.run(id);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  bitmaps(vmId: string): BitmapRow[] {
    return this.q.bitmaps.all(vmId);
  }

  setBitmap(row: BitmapRow): void {
    this.q.setBitmap.run(row);
  }

  dropBitmap(vmId: string, diskPath: string): void {
    this.q.dropBitmap.run(vmId, diskPath);
  }

  dropBitmaps(vmId: string): void {
    this.q.dropBitmaps.run(vmId);
  }

  targets(): TargetRow[] {
    return this.q.targets.all();
  }

  target(name: string): TargetRow | null {
    return this.q.target.get(name) ?? null;
  }

  addTarget(row: TargetRow): void {
    this.q.addTarget.run(row);
  }

  deleteTarget(name: string): void {
    this.q.delTarget.run(name);
  }
}
