import type { Retention } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

/** Backup schedules as stored (table backup_schedules of migrations 006 and 007). */

interface ScheduleRow {
  id: string;
  name: string;
  vms: string;
  target: string;
  every: string;
  at: string | null;
  retention: string;
  enabled: number;
  last_run_at: string | null;
  last_task: string | null;
  last_status: string | null;
  created_at: string;
  armed_at: string | null;
}

export interface ScheduleRecord {
  id: string;
  name: string;
  vms: string[] | 'all';
  target: string;
  every: string;
  at: string | null;
  retention: Retention;
  enabled: boolean;
  lastRunAt: string | null;
  lastTask: string | null;
  lastStatus: 'succeeded' | 'failed' | null;
  createdAt: string;
  /** Due times at or before this instant do not run (creation, a change of timing, enabling). */
  armedAt: string;
}

function toRecord(r: ScheduleRow): ScheduleRecord {
  return {
    id: r.id,
    name: r.name,
    vms: JSON.parse(r.vms) as string[] | 'all',
    target: r.target,
    every: r.every,
    at: r.at,
    retention: JSON.parse(r.retention) as Retention,
    enabled: r.enabled === 1,
    lastRunAt: r.last_run_at,
    lastTask: r.last_task,
    lastStatus: r.last_status === 'succeeded' || r.last_status === 'failed' ? r.last_status : null,
    createdAt: r.created_at,
    armedAt: r.armed_at ?? r.created_at,
  };
}

function toRow(s: ScheduleRecord): ScheduleRow {
  return {
    id: s.id,
    name: s.name,
    vms: JSON.stringify(s.vms),
    target: s.target,
    every: s.every,
    at: s.at,
    retention: JSON.stringify(s.retention),
    enabled: s.enabled ? 1 : 0,
    last_run_at: s.lastRunAt,
    last_task: s.lastTask,
    last_status: s.lastStatus,
    created_at: s.createdAt,
    armed_at: s.armedAt,
  };
}

export class ScheduleRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      all: db.prepare<[], ScheduleRow>('SELECT * FROM backup_schedules ORDER BY name'),
      one: db.prepare<[string], ScheduleRow>('SELECT * FROM backup_schedules WHERE id = ?'),
      byName: db.prepare<[string], ScheduleRow>('SELECT * FROM backup_schedules WHERE name = ?'),
      insert: db.prepare(
        `INSERT INTO backup_schedules (id, name, vms, target, every, at, retention, enabled, last_run_at, last_task, last_status, created_at, armed_at)
         VALUES (@id, @name, @vms, @target, @every, @at, @retention, @enabled, @last_run_at, @last_task, @last_status, @created_at, @armed_at)`,
      ),
      update: db.prepare(
        `UPDATE backup_schedules SET name = @name, vms = @vms, target = @target, every = @every, at = @at, retention = @retention,
         enabled = @enabled, armed_at = @armed_at WHERE id = @id`,
      ),
      run: db.prepare('UPDATE backup_schedules SET last_run_at = @last_run_at, last_task = @last_task, last_status = @last_status WHERE id = @id'),
      status: db.prepare('UPDATE backup_schedules SET last_status = @last_status WHERE id = @id AND last_task = @last_task'),
      del: db.prepare('DELETE FROM backup_schedules WHERE id = ?'),
    };
  }

  list(): ScheduleRecord[] {
    return this.q.all.all().map(toRecord);
  }

  get(id: string): ScheduleRecord | null {
    const r = this.q.one.get(id);
    return r ? toRecord(r) : null;
  }

  byName(name: string): ScheduleRecord | null {
    const r = this.q.byName.get(name);
    return r ? toRecord(r) : null;
  }

  insert(s: ScheduleRecord): void {
    this.q.insert.run(toRow(s));
  }

  /** Writes back what a PATCH can change (not the run fields). */
  update(s: ScheduleRecord): void {
    const { last_run_at: _a, last_task: _b, last_status: _c, created_at: _d, ...row } = toRow(s);
    this.q.update.run(row);
  }

  /** A run started: when, its task; its status is unknown (null) until it ends. */
  started(id: string, at: string, task: string): void {
    this.q.run.run({ id, last_run_at: at, last_task: task, last_status: null });
  }

  /** The run `task` ended (a later run's status is not overwritten). */
  ended(id: string, task: string, status: 'succeeded' | 'failed'): void {
    this.q.status.run({ id, last_task: task, last_status: status });
  }

  delete(id: string): void {
    this.q.del.run(id);
  }
}
