import { selectRetained, type CreateBackupBody, type Task, type TaskKind } from '@qemu-manager/contract';
import type { EventBus } from '../events/bus.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { TaskFailure, type TaskRun } from '../tasks/service.js';
import type { ScheduleRecord, ScheduleRepo } from './schedule-repo.js';
import { nextDue } from './schedules.js';

/**
 * Runs backup schedules (issue 13): ONE timer for all of them, armed for the earliest due time and
 * re-armed on every change and after every run. A run is one `backup.schedule` task (no target)
 * that, VM after VM, starts a backup through the engine and waits for it, then prunes that VM's
 * backups in the schedule's target by its retention, one delete task at a time.
 *
 * Due times: a schedule is due when its first due time after max(armedAt, lastRunAt) has passed.
 * lastRunAt is written when a run starts, so a restart (even during a run) never runs a due time
 * twice, and a schedule whose due time passed while the server was down runs once at start, however
 * many times it was missed. A due time that passes while the schedule's previous run is still
 * going runs once that run ends. `run(id)` runs a schedule now, the same way.
 */

/** The backup engine, as the scheduler uses it (backups/service.ts BackupService). */
export interface BackupRunner {
  /** Starts a backup task of the VM (`backup.create`; its result `{ backup, kind }`). May throw an AppError. */
  start(vmId: string, body: CreateBackupBody, opts?: { schedule?: string }): Task;
}

/** The backup delete (a `backup.delete` task that merges a backup later incrementals need into them). */
export interface BackupPruner {
  remove(backupId: string): Task;
}

/** What the scheduler needs from the task service. */
export interface SchedulerTasks {
  startCoordinator(kind: TaskKind, target: { vm?: string; disk?: string }, run: TaskRun): Task;
  wait(id: string): Promise<Task>;
  get(id: string): Task;
  cancel(id: string): Promise<Task>;
}

export interface SchedulerDeps {
  repo: ScheduleRepo;
  tasks: SchedulerTasks;
  runner: BackupRunner;
  pruner: BackupPruner;
  /** The listed backups of a VM in a target (newest first). */
  backups(filter: { vm: string; target: string }): ReadonlyArray<{ id: string; createdAt: string; state: string }>;
  vm(id: string): { id: string; name: string } | null;
  /** Every VM, in the order "all" backs them up. */
  allVms(): ReadonlyArray<{ id: string; name: string }>;
  bus: EventBus;
  log: Logger;
  timeZone?: string;
  now?: () => Date;
}

/** What a run did for one VM. */
export interface VmRunResult {
  vm: string;
  vmName: string | null;
  /** The backup task (null when none started). */
  task: string | null;
  backup: string | null;
  kind: string | null;
  error: string | null;
  note: string | null;
  /** Backups the retention removed, in the order they were removed (newest first). */
  pruned: string[];
}

/** The timer is re-armed at least this often (a changed clock is noticed). */
const MAX_DELAY_MS = 60 * 60_000;

export class BackupScheduler {
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  /** schedule id → the task of its run going on */
  private readonly running = new Map<string, string>();

  constructor(private readonly d: SchedulerDeps) {}

  /**
   * At server start (after the task service's recovery): the status of runs a crash cut short,
   * then every schedule that is due (missed while down) runs, and the timer is armed.
   */
  start(): void {
    for (const s of this.d.repo.list()) {
      if (s.lastTask && s.lastStatus === null) {
        let status: 'succeeded' | 'failed' = 'failed';
        try {
          const t = this.d.tasks.get(s.lastTask);
          if (t.status === 'queued' || t.status === 'running') continue; // cannot be: recovery ran
          if (t.status === 'succeeded') status = 'succeeded';
        } catch {
          // the task is gone: failed
        }
        this.d.repo.ended(s.id, s.lastTask, status);
      }
    }
    this.started = true;
    this.tick();
  }

  /** Server shutdown: no more runs start (runs going on are tasks: the task service ends them). */
  stop(): void {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A schedule changed: compute the earliest due time again. */
  rearm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.started) return;
    const now = this.now().getTime();
    let soonest = Infinity;
    for (const s of this.d.repo.list()) {
      if (!s.enabled || this.running.has(s.id)) continue;
      const due = this.dueAt(s);
      if (due !== null) soonest = Math.min(soonest, due.getTime());
    }
    if (soonest === Infinity) return;
    const delay = Math.min(Math.max(0, soonest - now), MAX_DELAY_MS);
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }

  /** Runs every schedule that is due now; returns their tasks. */
  tick(): Task[] {
    const started: Task[] = [];
    if (!this.started) return started;
    const now = this.now().getTime();
    for (const s of this.d.repo.list()) {
      if (!s.enabled || this.running.has(s.id)) continue;
      const due = this.dueAt(s);
      if (due !== null && due.getTime() <= now) started.push(this.launch(s));
    }
    this.rearm();
    return started;
  }

  /** Runs the schedule now, as the clock would; while a run of it is going on, that run. */
  run(s: ScheduleRecord): Task {
    const going = this.running.get(s.id);
    if (going) return this.d.tasks.get(going);
    const task = this.launch(s);
    this.rearm();
    return task;
  }

  /** The first due time after the schedule's last run (or its arming), or null when it has none. */
  private dueAt(s: ScheduleRecord): Date | null {
    const base = Math.max(Date.parse(s.armedAt), s.lastRunAt ? Date.parse(s.lastRunAt) : -Infinity);
    try {
      return nextDue(s.every, s.at, new Date(base), this.d.timeZone);
    } catch (err) {
      this.d.log.warn({ schedule: s.id, err: errorMessage(err) }, 'a backup schedule has a timing that no longer parses: it does not run');
      return null;
    }
  }

  private launch(s: ScheduleRecord): Task {
    const task = this.d.tasks.startCoordinator('backup.schedule', {}, (ctx) => this.perform(s, task.id, ctx));
    this.running.set(s.id, task.id);
    this.d.repo.started(s.id, this.now().toISOString(), task.id);
    void this.d.tasks.wait(task.id).then(
      (t) => {
        this.running.delete(s.id);
        this.d.repo.ended(s.id, t.id, t.status === 'succeeded' ? 'succeeded' : 'failed');
        this.rearm();
      },
      (err: unknown) => {
        this.running.delete(s.id);
        this.d.log.warn({ schedule: s.id, err: errorMessage(err) }, 'a backup schedule run could not be followed');
      },
    );
    return task;
  }

  private async perform(s: ScheduleRecord, taskId: string, ctx: Parameters<TaskRun>[0]): Promise<Record<string, unknown>> {
    const ids = s.vms === 'all' ? this.d.allVms().map((v) => v.id) : s.vms;
    const results: VmRunResult[] = [];
    ctx.progress(0, ids.length);
    for (const vmId of ids) {
      if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('Cancelled');
      results.push(await this.backupOne(s, vmId, taskId, ctx.signal));
      ctx.progress(results.length, ids.length);
    }
    const result = { schedule: s.id, target: s.target, vms: results };
    const failed = results.filter((r) => r.error !== null);
    if (failed.length) {
      const names = failed.map((r) => `${r.vmName ?? r.vm}: ${r.error}`).join('; ');
      throw new TaskFailure(`${failed.length} of ${results.length} VM backups of schedule ${s.name} failed: ${names}`, result);
    }
    return result;
  }

  private async backupOne(s: ScheduleRecord, vmId: string, taskId: string, signal: AbortSignal): Promise<VmRunResult> {
    const r: VmRunResult = { vm: vmId, vmName: null, task: null, backup: null, kind: null, error: null, note: null, pruned: [] };
    const vm = this.d.vm(vmId);
    if (!vm) {
      r.note = 'Skipped: the VM no longer exists';
      return r;
    }
    r.vmName = vm.name;
    let backup: Task;
    try {
      backup = this.d.runner.start(vmId, { target: s.target }, { schedule: s.id });
    } catch (err) {
      // The engine refused before a task existed: the failure is told here (its own tasks tell theirs).
      r.error = errorMessage(err);
      this.d.bus.publish({ type: 'backup.failed', vm: vmId, vmName: vm.name, task: taskId, error: r.error, schedule: s.id });
      return r;
    }
    r.task = backup.id;
    const done = await this.follow(backup.id, signal);
    if (done.status !== 'succeeded') {
      r.error = done.error ?? `The backup ended ${done.status}`;
      return r;
    }
    r.backup = typeof done.result?.backup === 'string' ? done.result.backup : null;
    r.kind = typeof done.result?.kind === 'string' ? done.result.kind : null;
    // Only after a backup succeeded (a failing VM keeps what it has).
    await this.prune(s, vmId, r, signal);
    return r;
  }

  /**
   * Removes what the retention does not keep, of the VM's listed backups in the target (whoever made
   * them; backups that are not `ok` — corrupt, missing — neither count nor go: they are the admin's
   * to look at). One delete at a time, newest first: a deleted backup that a kept, newer incremental
   * needs is merged into it, and newest first each merge only folds an incremental's changes into
   * the next kept backup, which is a backup that stays (oldest first would merge a full into its
   * child, then that child into the next, rewriting a full copy at every step). Each delete keeps
   * the chain valid by itself; one at a time, no two merges touch one chain at once. A delete that
   * fails stops the pruning of this VM (the next run tries again).
   */
  private async prune(s: ScheduleRecord, vmId: string, r: VmRunResult, signal: AbortSignal): Promise<void> {
    const listed = this.d.backups({ vm: vmId, target: s.target }).filter((b) => b.state === 'ok');
    const { prune } = selectRetained(listed, s.retention, this.d.timeZone);
    for (const id of prune) {
      if (id === r.backup) continue; // never the backup this run made
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('Cancelled');
      let del: Task;
      try {
        del = this.d.pruner.remove(id);
      } catch (err) {
        r.error = `Pruning backup ${id} failed: ${errorMessage(err)}`;
        return;
      }
      const done = await this.follow(del.id, signal);
      if (done.status !== 'succeeded') {
        r.error = `Pruning backup ${id} failed: ${done.error ?? done.status}`;
        return;
      }
      r.pruned.push(id);
    }
  }

  /** Waits for a task; when the run is cancelled, the task is cancelled too. */
  private async follow(id: string, signal: AbortSignal): Promise<Task> {
    const onAbort = () => void this.d.tasks.cancel(id).catch(() => undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.d.tasks.wait(id);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private now(): Date {
    return this.d.now ? this.d.now() : new Date();
  }
}
