import type { Disk, DiskFormat, DiskStatus } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

interface DiskRow {
  id: string;
  name: string;
  size: number;
  format: DiskFormat;
  path: string;
  status: DiskStatus;
  error: string | null;
  created_at: string;
  completed_at: string | null;
  vm_id: string | null;
  // clones and backing chains (issue 10)
  backing_path: string | null;
  children: string | null;
}

// images (issue 12): a disk made from an image backs onto the image's file (image_chain).
const SELECT = `SELECT d.*, vd.vm_id, COALESCE(dc.backing_path, ic.backing_path) AS backing_path,
    (SELECT group_concat(c.disk_id, ',') FROM disk_chain c WHERE c.backing_id = d.id) AS children
  FROM disks d LEFT JOIN vm_disks vd ON vd.path = d.path LEFT JOIN disk_chain dc ON dc.disk_id = d.id
  LEFT JOIN image_chain ic ON ic.disk_id = d.id`;

function toDisk(r: DiskRow): Disk {
  return {
    id: r.id,
    name: r.name,
    size: r.size,
    format: r.format,
    path: r.path,
    status: r.status,
    createdAt: r.created_at,
    createdAtCompleted: r.completed_at,
    error: r.error,
    attachedTo: r.vm_id,
    backingFile: r.backing_path,
    children: r.children ? r.children.split(',').sort() : [],
  };
}

export class DiskRepo {
  private readonly q;
  /** Bumped by every write, so readers can cache what they derive from the table. */
  version = 0;

  constructor(db: Db) {
    this.q = {
      all: db.prepare<[], DiskRow>(`${SELECT} ORDER BY d.created_at, d.name`),
      one: db.prepare<[string], DiskRow>(`${SELECT} WHERE d.id = ?`),
      byPath: db.prepare<[string], DiskRow>(`${SELECT} WHERE d.path = ?`),
      byName: db.prepare<[string], { id: string }>('SELECT id FROM disks WHERE name = ?'),
      byStatus: db.prepare<[string], DiskRow>(`${SELECT} WHERE d.status = ?`),
      insert: db.prepare(
        `INSERT INTO disks (id, name, size, format, path, status, created_at)
         VALUES (@id, @name, @size, @format, @path, 'creating', @created_at)`,
      ),
      finish: db.prepare('UPDATE disks SET status = ?, error = ?, completed_at = ? WHERE id = ?'),
      del: db.prepare('DELETE FROM disks WHERE id = ?'),
      // disk resize (issue 10)
      setSize: db.prepare('UPDATE disks SET size = ? WHERE id = ?'),
      // clones and backing chains (issue 10)
      insertReady: db.prepare(
        `INSERT INTO disks (id, name, size, format, path, status, created_at, completed_at)
         VALUES (@id, @name, @size, @format, @path, 'ready', @created_at, @created_at)`,
      ),
      insertChain: db.prepare('INSERT INTO disk_chain (disk_id, backing_id, backing_path, created_at) VALUES (?, ?, ?, ?)'),
    };
    this.db = db;
  }

  private readonly db: Db;

  list(): Disk[] {
    return this.q.all.all().map(toDisk);
  }

  get(id: string): Disk | null {
    const r = this.q.one.get(id);
    return r ? toDisk(r) : null;
  }

  byPath(path: string): Disk | null {
    const r = this.q.byPath.get(path);
    return r ? toDisk(r) : null;
  }

  byStatus(status: DiskStatus): Disk[] {
    return this.q.byStatus.all(status).map(toDisk);
  }

  nameTaken(name: string): boolean {
    return this.q.byName.get(name) !== undefined;
  }

  insert(d: { id: string; name: string; size: number; format: DiskFormat; path: string; created_at: string }): void {
    this.version++;
    this.q.insert.run(d);
  }

  finish(id: string, status: 'ready' | 'error', error: string | null, at: string | null): void {
    this.version++;
    this.q.finish.run(status, error, at, id);
  }

  delete(id: string): void {
    this.version++;
    this.q.del.run(id);
  }

  // disk resize (issue 10)
  /** The disk's size in GB after a resize. */
  setSize(id: string, sizeGb: number): void {
    this.version++;
    this.q.setSize.run(sizeGb, id);
  }

  // --- clones and backing chains (issue 10) ---

  /** Registers a disk whose file is already complete (a clone), with the disk it backs onto if any. */
  insertReady(d: { id: string; name: string; size: number; format: DiskFormat; path: string; created_at: string; backing?: { id: string; path: string } }): void {
    this.version++;
    this.q.insertReady.run({ id: d.id, name: d.name, size: d.size, format: d.format, path: d.path, created_at: d.created_at });
    if (d.backing) this.q.insertChain.run(d.id, d.backing.id, d.backing.path, d.created_at);
  }

  /** Runs `fn` in one transaction (a clone's disks and VM appear together, or not at all). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
