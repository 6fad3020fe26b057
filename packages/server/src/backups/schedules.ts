import type { BackupSchedule, CreateBackupScheduleBody, PatchBackupScheduleBody, Retention, Task } from '@qemu-manager/contract';
import { Cron } from 'croner';
import crypto from 'node:crypto';
import { AppError } from '../lib/errors.js';
import type { ScheduleRecord, ScheduleRepo } from './schedule-repo.js';

/**
 * Backup schedules (issue 13): when they run and what they hold. `every` is hourly | daily | weekly
 * (with `at`: MM for hourly, HH:MM for daily and weekly — weekly is Mondays; 00 / 00:00 when not
 * given) or a 5-field cron expression (no `at`). Times are the server's local time (or the time
 * zone it is given). The scheduler (scheduler.ts) runs them; this module checks bodies and stores.
 */

const PRESETS = ['hourly', 'daily', 'weekly'] as const;
const RULES = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const;

/** The 5-field cron expression a schedule's `every` and `at` stand for. Throws VALIDATION. */
export function cronOf(every: string, at: string | null | undefined): string {
  const preset = (PRESETS as readonly string[]).includes(every);
  if (!preset) {
    if (at !== null && at !== undefined) throw new AppError('VALIDATION', `"at" goes with hourly, daily or weekly only; put the time in the cron expression "${every}"`);
    const fields = every.trim().split(/\s+/);
    if (fields.length !== 5) {
      throw new AppError('VALIDATION', `every must be hourly, daily, weekly or a cron expression of 5 fields (minute hour day-of-month month day-of-week), not "${every}"`);
    }
    return fields.join(' ');
  }
  if (every === 'hourly') {
    if (at !== null && at !== undefined && !/^[0-5][0-9]$/.test(at)) throw new AppError('VALIDATION', `"at" of an hourly schedule is the minute, MM (e.g. 15), not "${at}"`);
    return `${Number(at ?? '0')} * * * *`;
  }
  const m = at === null || at === undefined ? ['', '00', '00'] : /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(at);
  if (!m) throw new AppError('VALIDATION', `"at" of a ${every} schedule is HH:MM (e.g. 02:30), not "${at}"`);
  return `${Number(m[2])} ${Number(m[1])} * * ${every === 'weekly' ? '1' : '*'}`;
}

function cron(every: string, at: string | null | undefined, timeZone?: string): Cron {
  const expr = cronOf(every, at);
  try {
    return new Cron(expr, { mode: '5-part', paused: true, ...(timeZone ? { timezone: timeZone } : {}) });
  } catch (err) {
    throw new AppError('VALIDATION', `every: "${every}" is not a valid cron expression: ${err instanceof Error ? err.message.replace(/^CronPattern: /, '') : String(err)}`);
  }
}

/** The first due time strictly after `after`, or null if there is none. Throws VALIDATION. */
export function nextDue(every: string, at: string | null | undefined, after: Date, timeZone?: string): Date | null {
  return cron(every, at, timeZone).nextRun(after);
}

/** Checks `every` and `at` together: a valid expression that runs at some time. */
export function checkTiming(every: string, at: string | null | undefined, timeZone?: string): void {
  if (nextDue(every, at, new Date(), timeZone) === null) throw new AppError('VALIDATION', `every: "${every}" never runs (no date matches it)`);
}

function checkRetention(r: Retention): void {
  if (!RULES.some((k) => (r[k] ?? 0) > 0)) {
    throw new AppError('VALIDATION', 'retention needs at least one rule (keepLast, keepHourly, keepDaily, keepWeekly or keepMonthly): a schedule that kept everything would fill its target');
  }
}

/** What the schedules need from the rest of the server. */
export interface ScheduleDeps {
  repo: ScheduleRepo;
  /** Whether a VM of this id exists now. */
  vmExists(id: string): boolean;
  /** The target of that name; throws TARGET_NOT_FOUND. */
  resolveTarget(name: string): { name: string; path: string };
  /** A schedule was made, changed or removed: the scheduler re-arms its timer. */
  changed(): void;
  /** Runs the schedule now, as the clock would (the scheduler). */
  runNow(s: ScheduleRecord): Task;
  timeZone?: string;
  now?: () => Date;
}

export class BackupSchedules {
  constructor(private readonly d: ScheduleDeps) {}

  list(): BackupSchedule[] {
    return this.d.repo.list().map((s) => this.view(s));
  }

  get(id: string): BackupSchedule {
    return this.view(this.require(id));
  }

  create(body: CreateBackupScheduleBody): BackupSchedule {
    const target = body.target ?? 'default';
    this.checkName(body.name, null);
    this.checkVms(body.vms);
    this.d.resolveTarget(target);
    checkTiming(body.every, body.at, this.d.timeZone);
    checkRetention(body.retention);
    const now = this.now().toISOString();
    const s: ScheduleRecord = {
      id: crypto.randomUUID(),
      name: body.name,
      vms: body.vms === 'all' ? 'all' : body.vms,
      target,
      every: body.every.trim(),
      at: body.at ?? null,
      retention: body.retention,
      enabled: body.enabled ?? true,
      lastRunAt: null,
      lastTask: null,
      lastStatus: null,
      createdAt: now,
      armedAt: now,
    };
    this.d.repo.insert(s);
    this.d.changed();
    return this.view(s);
  }

  update(id: string, body: PatchBackupScheduleBody): BackupSchedule {
    const s = this.require(id);
    if (body.name !== undefined) this.checkName(body.name, s.id);
    if (body.vms !== undefined) this.checkVms(body.vms);
    if (body.target !== undefined) this.d.resolveTarget(body.target);
    const every = body.every !== undefined ? body.every.trim() : s.every;
    const at = body.at !== undefined ? body.at : s.at;
    if (body.every !== undefined || body.at !== undefined) checkTiming(every, at, this.d.timeZone);
    if (body.retention !== undefined) checkRetention(body.retention);
    const enabled = body.enabled ?? s.enabled;
    // A new timing, or enabling, counts due times from now on: a time that passed before it does not fire.
    const rearm = every !== s.every || at !== s.at || (enabled && !s.enabled);
    const next: ScheduleRecord = {
      ...s,
      name: body.name ?? s.name,
      vms: body.vms ?? s.vms,
      target: body.target ?? s.target,
      every,
      at,
      retention: body.retention ?? s.retention,
      enabled,
      armedAt: rearm ? this.now().toISOString() : s.armedAt,
    };
    this.d.repo.update(next);
    this.d.changed();
    return this.view(next);
  }

  /** Removes the schedule; a run of it that is going on finishes (its backups are kept). */
  remove(id: string): void {
    this.require(id);
    this.d.repo.delete(id);
    this.d.changed();
  }

  /** Runs it now (a disabled schedule too: the admin asks), exactly as the clock would: its task. */
  run(id: string): Task {
    return this.d.runNow(this.require(id));
  }

  /** The public shape, with the next due time after now (null when disabled). */
  view(s: ScheduleRecord): BackupSchedule {
    let nextRunAt: string | null = null;
    if (s.enabled) nextRunAt = nextDue(s.every, s.at, this.now(), this.d.timeZone)?.toISOString() ?? null;
    const { armedAt: _armed, ...rest } = s;
    return { ...rest, nextRunAt };
  }

  require(id: string): ScheduleRecord {
    const s = this.d.repo.get(id);
    if (!s) throw new AppError('SCHEDULE_NOT_FOUND', `Backup schedule not found: ${id}`);
    return s;
  }

  private checkName(name: string, self: string | null): void {
    const other = this.d.repo.byName(name);
    if (other && other.id !== self) throw new AppError('NAME_TAKEN', `A backup schedule named ${name} already exists`);
  }

  private checkVms(vms: string[] | 'all'): void {
    if (vms === 'all') return;
    const seen = new Set<string>();
    for (const id of vms) {
      if (seen.has(id)) throw new AppError('VALIDATION', `vms: VM ${id} is listed twice`);
      seen.add(id);
      if (!this.d.vmExists(id)) throw new AppError('VM_NOT_FOUND', `VM not found: ${id}`);
    }
  }

  private now(): Date {
    return this.d.now ? this.d.now() : new Date();
  }
}
