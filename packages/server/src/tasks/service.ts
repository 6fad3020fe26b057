import type { Task, TaskKind } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { EventBus } from '../events/bus.js';
import { AppError, errorMessage, isAppError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { nowIso } from '../lib/time.js';
import type { TaskRepo } from './repo.js';

/** What a running task can do. */
export interface TaskContext {
  /** Aborted when the task is cancelled: stop the work (kill the tool) and reject. */
  readonly signal: AbortSignal;
  /** Reports progress; `total` null while unknown. Throttled before it reaches clients. */
  progress(done: number, total?: number | null): void;
  /**
   * A file the task writes under a temporary name: removed if the task fails or is cancelled, and
   * after a crash at the next start. Recorded before the caller creates it.
   */
  partial(file: string): void;
  /** The file is complete (renamed to its real name): no longer removed. */
  kept(file: string): void;
  /** Names the VM or disk the task made, once it exists. */
  target(t: { vm?: string; disk?: string }): void;
}

export type TaskRun = (ctx: TaskContext) => Promise<Record<string, unknown> | null>;

interface Live {
  controller: AbortController;
  partial: string[];
  lastEmit: number;
  trailing: NodeJS.Timeout | null;
  done: Promise<void>;
  ended: boolean;
}

const EMIT_EVERY_MS = 250; // at most 4 task.updated a second per task
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * Every long operation is a task: recorded in SQLite, run in the background with progress,
 * cancellable, and reconciled after a crash (a task that was running is failed "interrupted" and
 * the files it was writing are removed). At most `concurrency` run at once; the rest wait queued.
 */
export class TaskService {
  private readonly live = new Map<string, Live>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;

  constructor(
    private readonly repo: TaskRepo,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly opts: { concurrency?: number } = {},
  ) {}

  /** Records a task (queued) and runs it as soon as a slot is free. */
  start(kind: TaskKind, target: { vm?: string; disk?: string }, run: TaskRun, opts: { bytesTotal?: number | null } = {}): Task {
    const id = crypto.randomUUID();
    this.repo.insert({ id, kind, vm: target.vm ?? null, disk: target.disk ?? null, bytesTotal: opts.bytesTotal ?? null, createdAt: nowIso() });
    const controller = new AbortController();
    const live: Live = { controller, partial: [], lastEmit: 0, trailing: null, done: Promise.resolve(), ended: false };
    this.live.set(id, live);
    live.done = this.slot()
      .then(() => this.perform(id, live, run))
      .finally(() => {
        this.live.delete(id);
        this.release();
      });
    const task = this.require(id);
    this.bus.publish({ type: 'task.created', task });
    return task;
  }

  get(id: string): Task {
    return this.require(id);
  }

  /** The queued or running task working on this disk or VM, if any. */
  activeFor(target: { vm?: string; disk?: string }): Task | null {
    for (const id of this.live.keys()) {
      const t = this.repo.get(id);
      if (!t || (t.status !== 'queued' && t.status !== 'running')) continue;
      if ((target.disk !== undefined && t.target.disk === target.disk) || (target.vm !== undefined && t.target.vm === target.vm)) return t;
    }
    return null;
  }

  list(filter: { vm?: string; disk?: string; limit?: string | number }): Task[] {
    const limit = Math.min(Number(filter.limit ?? DEFAULT_LIMIT), MAX_LIMIT);
    return this.repo.list({ ...(filter.vm !== undefined ? { vm: filter.vm } : {}), ...(filter.disk !== undefined ? { disk: filter.disk } : {}), limit });
  }

  /** Cancels a queued or running task; one that has ended is a 409. Resolves with the task as it ended. */
  async cancel(id: string): Promise<Task> {
    const task = this.require(id);
    const live = this.live.get(id);
    if (!live || (task.status !== 'queued' && task.status !== 'running')) {
      throw new AppError('TASK_FINISHED', `Task ${id} has already ${task.status === 'succeeded' ? 'succeeded' : `ended (${task.status})`}`);
    }
    live.controller.abort(new Error('Cancelled'));
    // A queued task ends now (it never gets to run); a running one once its work has stopped.
    if (task.status === 'queued') this.end(id, live, 'cancelled', 'Cancelled before it started', null);
    else await live.done;
    return this.require(id);
  }

  /**
   * At server start: tasks a crash left queued or running are failed "interrupted", and the files
   * they were writing are removed. Returns how many.
   */
  recover(): number {
    const stale = this.repo.unfinished();
    for (const { task, partial } of stale) {
      for (const f of partial) fs.rmSync(f, { force: true });
      this.repo.finish(task.id, 'failed', nowIso(), 'Interrupted by a server restart', null, task.progress);
    }
    return stale.length;
  }

  /** Waits for every task to end (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.live.size) await Promise.all([...this.live.values()].map((l) => l.done));
  }

  /**
   * Server shutdown: tasks get `graceMs` to finish (a disk creation takes moments), then the rest
   * are cancelled (their partial files removed) and waited for.
   */
  async shutdown(graceMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const l of this.live.values()) l.controller.abort(new Error('The server shut down'));
    await this.idle();
  }

  // --- helpers -----------------------------------------------------------------------------

  private async perform(id: string, live: Live, run: TaskRun): Promise<void> {
    const { signal } = live.controller;
    if (signal.aborted) return this.end(id, live, 'cancelled', errorMessage(signal.reason), null);
    this.repo.start(id, nowIso());
    this.emit(id, live, true);
    let lastDone = 0;
    let lastTotal: number | null = this.repo.get(id)?.bytesTotal ?? null;
    const ctx: TaskContext = {
      signal,
      progress: (done, total) => {
        lastDone = Math.max(0, Math.round(done));
        if (total !== undefined) lastTotal = total === null ? null : Math.max(0, Math.round(total));
        const p = lastTotal ? Math.min(1, lastDone / lastTotal) : 0;
        this.repo.progress(id, p, lastDone, lastTotal);
        this.emit(id, live, false);
      },
      partial: (file) => {
        if (!live.partial.includes(file)) live.partial.push(file);
        this.repo.setPartial(id, live.partial);
      },
      kept: (file) => {
        live.partial = live.partial.filter((f) => f !== file);
        this.repo.setPartial(id, live.partial);
      },
      target: (t) => this.repo.setTarget(id, t),
    };
    try {
      const result = await run(ctx);
      // Work that completed although a cancel came (a step that cannot be stopped, such as QEMU's
      // snapshot job) is reported as what it is: done, with its result.
      this.end(id, live, 'succeeded', null, result);
    } catch (err) {
      if (signal.aborted) return this.end(id, live, 'cancelled', errorMessage(signal.reason), null);
      if (!isAppError(err) && !(err instanceof TaskFailure)) this.log.warn({ taskId: id, err: errorMessage(err) }, 'task failed');
      this.end(id, live, 'failed', errorMessage(err), err instanceof TaskFailure ? err.result : null);
    }
  }

  private end(id: string, live: Live, status: 'succeeded' | 'failed' | 'cancelled', error: string | null, result: Record<string, unknown> | null): void {
    if (live.ended) return;
    live.ended = true;
    if (status !== 'succeeded') for (const f of live.partial) fs.rmSync(f, { force: true });
    live.partial = [];
    this.repo.setPartial(id, []);
    const before = this.repo.get(id);
    this.repo.finish(id, status, nowIso(), error, result, status === 'succeeded' ? 1 : (before?.progress ?? 0));
    this.emit(id, live, true);
  }

  /** task.updated, at most every 250 ms per task; a status change goes out at once (and last). */
  private emit(id: string, live: Live, now: boolean): void {
    const send = () => {
      live.trailing = null;
      live.lastEmit = Date.now();
      const task = this.repo.get(id);
      if (task) this.bus.publish({ type: 'task.updated', task });
    };
    if (now) {
      if (live.trailing) clearTimeout(live.trailing);
      return send();
    }
    if (live.trailing) return;
    const wait = live.lastEmit + EMIT_EVERY_MS - Date.now();
    if (wait <= 0) return send();
    live.trailing = setTimeout(send, wait);
  }

  private slot(): Promise<void> {
    const max = this.opts.concurrency ?? 4;
    if (this.running < max) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => resolve()));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private require(id: string): Task {
    const task = this.repo.get(id);
    if (!task) throw new AppError('TASK_NOT_FOUND', `Task not found: ${id}`);
    return task;
  }

  // --- backups: schedules and retention (issue 13) ---------------------------------------------

  /** Resolves with the task once it has ended (at once when it already has). */
  async wait(id: string): Promise<Task> {
    const live = this.live.get(id);
    if (live) await live.done;
    return this.require(id);
  }

  /**
   * Starts a task that only coordinates others (starts tasks and waits for them, like a backup
   * schedule's run): it takes no slot, so coordinators waiting for their tasks never hold the
   * slots those tasks need. Cancel, progress, recovery and events as for any task.
   */
  startCoordinator(kind: TaskKind, target: { vm?: string; disk?: string }, run: TaskRun): Task {
    const id = crypto.randomUUID();
    this.repo.insert({ id, kind, vm: target.vm ?? null, disk: target.disk ?? null, bytesTotal: null, createdAt: nowIso() });
    const live: Live = { controller: new AbortController(), partial: [], lastEmit: 0, trailing: null, done: Promise.resolve(), ended: false };
    this.live.set(id, live);
    live.done = Promise.resolve()
      .then(() => this.perform(id, live, run))
      .finally(() => this.live.delete(id));
    const task = this.require(id);
    this.bus.publish({ type: 'task.created', task });
    return task;
  }
}

/**
 * A task that failed but has a result to show (e.g. a schedule's run: what each VM got). Thrown by a
 * run, it fails the task with its message and keeps its result (backups: schedules and retention).
 */
export class TaskFailure extends Error {
  constructor(
    message: string,
    readonly result: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'TaskFailure';
  }
}
