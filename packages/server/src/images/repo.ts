import type { Image } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

interface ImageRow {
  name: string;
  path: string;
  virtual_size: number;
  size: number;
  sha256: string;
  source: string;
  created_at: string;
  used_by: string | null;
}

/** An image as stored, with the file the server keeps it in (the API never shows the path). */
export interface ImageRecord extends Image {
  path: string;
}

const SELECT = `SELECT i.*, (SELECT group_concat(c.disk_id, ',') FROM image_chain c WHERE c.image_name = i.name) AS used_by FROM images i`;

function toRecord(r: ImageRow): ImageRecord {
  return {
    name: r.name,
    format: 'qcow2',
    virtualSize: r.virtual_size,
    size: r.size,
    sha256: r.sha256,
    createdAt: r.created_at,
    source: r.source,
    usedBy: r.used_by ? r.used_by.split(',').sort() : [],
    path: r.path,
  };
}

/** The `images` and `image_chain` tables (migration 011). */
export class ImageRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      all: db.prepare<[], ImageRow>(`${SELECT} ORDER BY i.name`),
      one: db.prepare<[string], ImageRow>(`${SELECT} WHERE i.name = ?`),
      byPath: db.prepare<[string], ImageRow>(`${SELECT} WHERE i.path = ?`),
      insert: db.prepare(
        `INSERT INTO images (name, path, virtual_size, size, sha256, source, created_at)
         VALUES (@name, @path, @virtual_size, @size, @sha256, @source, @created_at)`,
      ),
      del: db.prepare('DELETE FROM images WHERE name = ?'),
      insertChain: db.prepare('INSERT INTO image_chain (disk_id, image_name, backing_path, created_at) VALUES (?, ?, ?, ?)'),
    };
  }

  list(): ImageRecord[] {
    return this.q.all.all().map(toRecord);
  }

  get(name: string): ImageRecord | null {
    const r = this.q.one.get(name);
    return r ? toRecord(r) : null;
  }

  byPath(file: string): ImageRecord | null {
    const r = this.q.byPath.get(file);
    return r ? toRecord(r) : null;
  }

  insert(i: { name: string; path: string; virtualSize: number; size: number; sha256: string; source: string; createdAt: string }): void {
    this.q.insert.run({ name: i.name, path: i.path, virtual_size: i.virtualSize, size: i.size, sha256: i.sha256, source: i.source, created_at: i.createdAt });
  }

  delete(name: string): void {
    this.q.del.run(name);
  }

  /** Records that the managed disk `diskId` is a qcow2 overlay on the image (in the disk's transaction). */
  recordOverlay(diskId: string, image: Pick<ImageRecord, 'name' | 'path'>, at: string): void {
    this.q.insertChain.run(diskId, image.name, image.path, at);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
