import type { Snapshot } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

interface SnapshotRow {
  vm_id: string;
  name: string;
  description: string;
  created_at: string;
  vm_state: number;
  parent: string | null;
  current: number;
  size_bytes: number;
  disks: string;
}

function toSnapshot(r: SnapshotRow): Snapshot {
  return {
    name: r.name,
    description: r.description,
    createdAt: r.created_at,
    vmState: r.vm_state === 1,
    parent: r.parent,
    current: r.current === 1,
    sizeBytes: r.size_bytes,
    disks: JSON.parse(r.disks) as string[],
  };
}

/** The vm_snapshots table (rows go with their VM: ON DELETE CASCADE). */
export class SnapshotRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      list: db.prepare<[string], SnapshotRow>('SELECT * FROM vm_snapshots WHERE vm_id = ? ORDER BY created_at, rowid'),
      one: db.prepare<[string, string], SnapshotRow>('SELECT * FROM vm_snapshots WHERE vm_id = ? AND name = ?'),
      current: db.prepare<[string], SnapshotRow>('SELECT * FROM vm_snapshots WHERE vm_id = ? AND current = 1'),
      insert: db.prepare(
        `INSERT INTO vm_snapshots (vm_id, name, description, created_at, vm_state, parent, current, size_bytes, disks)
         VALUES (@vm_id, @name, @description, @created_at, @vm_state, @parent, 1, @size_bytes, @disks)`,
      ),
      clearCurrent: db.prepare('UPDATE vm_snapshots SET current = 0 WHERE vm_id = ?'),
      setCurrent: db.prepare('UPDATE vm_snapshots SET current = 1 WHERE vm_id = ? AND name = ?'),
      reparent: db.prepare('UPDATE vm_snapshots SET parent = ? WHERE vm_id = ? AND parent = ?'),
      del: db.prepare('DELETE FROM vm_snapshots WHERE vm_id = ? AND name = ?'),
    };
  }

  list(vmId: string): Snapshot[] {
    return this.q.list.all(vmId).map(toSnapshot);
  }

  get(vmId: string, name: string): Snapshot | null {
    const r = this.q.one.get(vmId, name);
    return r ? toSnapshot(r) : null;
  }

  current(vmId: string): Snapshot | null {
    const r = this.q.current.get(vmId);
    return r ? toSnapshot(r) : null;
  }

  /** Records a new snapshot on top of the current one; it becomes current. */
  insert(vmId: string, s: Omit<Snapshot, 'current' | 'parent'>): void {
    this.db.transaction(() => {
      const parent = this.q.current.get(vmId)?.name ?? null;
      this.q.clearCurrent.run(vmId);
      this.q.insert.run({
        vm_id: vmId,
        name: s.name,
        description: s.description,
        created_at: s.createdAt,
        vm_state: s.vmState ? 1 : 0,
        parent,
        size_bytes: s.sizeBytes,
        disks: JSON.stringify(s.disks),
      });
    })();
  }

  /** The VM's disks were reverted to `name`. */
  makeCurrent(vmId: string, name: string): void {
    this.db.transaction(() => {
      this.q.clearCurrent.run(vmId);
      this.q.setCurrent.run(vmId, name);
    })();
  }

  /** Removes one snapshot: its children hang on its parent, and so does `current` if it was this one. */
  delete(vmId: string, name: string): void {
    this.db.transaction(() => {
      const row = this.q.one.get(vmId, name);
      if (!row) return;
      this.q.reparent.run(row.parent, vmId, name);
      this.q.del.run(vmId, name);
      if (row.current === 1 && row.parent !== null) this.q.setCurrent.run(vmId, row.parent);
    })();
  }
}
