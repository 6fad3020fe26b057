import type { Task, TaskKind, TaskStatus } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

interface TaskRow {
  id: string;
  kind: TaskKind;
  status: TaskStatus;
  progress: number;
  bytes_done: number;
  bytes_total: number | null;
  vm_id: string | null;
  disk_id: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  error: string | null;
  result: string | null;
  partial: string;
}

function toTask(r: TaskRow): Task {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    progress: r.progress,
    bytesDone: r.bytes_done,
    bytesTotal: r.bytes_total,
    target: { vm: r.vm_id, disk: r.disk_id },
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: r.error,
    result: r.result === null ? null : (JSON.parse(r.result) as Record<string, unknown>),
  };
}

/** The tasks table. */
export class TaskRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      one: db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?'),
      recent: db.prepare<[number], TaskRow>('SELECT * FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      byVm: db.prepare<[string, number], TaskRow>('SELECT * FROM tasks WHERE vm_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      byDisk: db.prepare<[string, number], TaskRow>('SELECT * FROM tasks WHERE disk_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      unfinished: db.prepare<[], TaskRow>("SELECT * FROM tasks WHERE status IN ('queued', 'running')"),
      insert: db.prepare(
        `INSERT INTO tasks (id, kind, status, bytes_total, vm_id, disk_id, created_at)
         VALUES (@id, @kind, 'queued', @bytes_total, @vm_id, @disk_id, @created_at)`,
      ),
      start: db.prepare("UPDATE tasks SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'"),
      progress: db.prepare('UPDATE tasks SET progress = ?, bytes_done = ?, bytes_total = ? WHERE id = ?'),
      partial: db.prepare('UPDATE tasks SET partial = ? WHERE id = ?'),
      finish: db.prepare('UPDATE tasks SET status = ?, ended_at = ?, error = ?, result = ?, progress = ? WHERE id = ?'),
      target: db.prepare('UPDATE tasks SET vm_id = COALESCE(?, vm_id), disk_id = COALESCE(?, disk_id) WHERE id = ?'),
    };
  }

  get(id: string): Task | null {
    const r = this.q.one.get(id);
    return r ? toTask(r) : null;
  }

  list(filter: { vm?: string; disk?: string; limit: number }): Task[] {
    const rows =
      filter.vm !== undefined
        ? this.q.byVm.all(filter.vm, filter.limit)
        : filter.disk !== undefined
          ? this.q.byDisk.all(filter.disk, filter.limit)
          : this.q.recent.all(filter.limit);
    return rows.filter((r) => filter.disk === undefined || r.disk_id === filter.disk).map(toTask);
  }

  /** Tasks a crash left queued or running, with the files they were writing. */
  unfinished(): Array<{ task: Task; partial: string[] }> {
    return this.q.unfinished.all().map((r) => ({ task: toTask(r), partial: JSON.parse(r.partial) as string[] }));
  }

  insert(t: { id: string; kind: TaskKind; vm: string | null; disk: string | null; bytesTotal: number | null; createdAt: string }): void {
    this.q.insert.run({ id: t.id, kind: t.kind, bytes_total: t.bytesTotal, vm_id: t.vm, disk_id: t.disk, created_at: t.createdAt });
  }

  start(id: string, at: string): boolean {
    return this.q.start.run(at, id).changes === 1;
  }

  progress(id: string, progress: number, done: number, total: number | null): void {
    this.q.progress.run(progress, done, total, id);
  }

  setPartial(id: string, files: readonly string[]): void {
    this.q.partial.run(JSON.stringify(files), id);
  }

  setTarget(id: string, target: { vm?: string; disk?: string }): void {
    this.q.target.run(target.vm ?? null, target.disk ?? null, id);
  }

  finish(id: string, status: 'succeeded' | 'failed' | 'cancelled', at: string, error: string | null, result: Record<string, unknown> | null, progress: number): void {
    this.q.finish.run(status, at, error, result === null ? null : JSON.stringify(result), progress, id);
  }
}
