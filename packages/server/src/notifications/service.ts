import type {
  CreateNotificationBody,
  Notification,
  NotificationDelivery,
  NotificationEvent,
  NotificationPayload,
  ServerEvent,
} from '@qemu-manager/contract';
import { randomUUID } from 'node:crypto';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { nowIso } from '../lib/time.js';
import { attempt, ATTEMPT_TIMEOUT_MS, EndpointQueue } from './delivery.js';
import { NotificationRepo, toNotification, type EndpointRecord } from './repo.js';

/** Below this share of free space a storage root or backup target is low. */
export const LOW_FREE_RATIO = 0.1;
const MAX_ENDPOINTS = 100;

/** A place whose free space is watched (the metrics service's host view). */
export interface WatchedStorage {
  kind: string;
  name: string;
  path: string;
  freeBytes: number | null;
  totalBytes: number | null;
}

/** Does endpoint `e` want event `ev`? A test goes to the one endpoint it was sent to only. */
export function wants(e: Pick<EndpointRecord, 'events'>, ev: NotificationPayload['event']): boolean {
  return ev !== 'test' && e.events.includes(ev);
}

const bounded = (s: string, max = 500) => (s.length > max ? `${s.slice(0, max)}…` : s);

/** The payloads of each event. */
export const payloads = {
  crashed(vm: { id: string; name: string }, reason: 'exited' | 'panicked', at = nowIso()): NotificationPayload {
    const why = reason === 'panicked' ? 'the guest panicked' : 'its QEMU process exited';
    return { event: 'vm.crashed', vm: { id: vm.id, name: vm.name }, message: `VM "${vm.name}" stopped without being asked: ${why}`, at };
  },
  taskFailed(task: { id: string; kind: string; error: string | null }, at = nowIso()): NotificationPayload {
    const error = task.error === null ? null : bounded(task.error);
    return { event: 'task.failed', task: { id: task.id, kind: task.kind, error }, message: `Task ${task.kind} failed${error ? `: ${error}` : ''}`, at };
  },
  storageLow(s: WatchedStorage & { freeBytes: number; totalBytes: number }, at = nowIso()): NotificationPayload {
    const pct = s.totalBytes > 0 ? Math.floor((s.freeBytes / s.totalBytes) * 1000) / 10 : 0;
    return {
      event: 'storage.low',
      storage: { kind: s.kind, name: s.name, path: s.path, freeBytes: s.freeBytes, totalBytes: s.totalBytes },
      message: `${s.kind === 'backup-target' ? 'Backup target' : 'Storage root'} ${s.name} has ${pct} % free (under ${LOW_FREE_RATIO * 100} %)`,
      at,
    };
  },
  started(version: string, at = nowIso()): NotificationPayload {
    return { event: 'server.started', message: `QEMU Manager ${version} started`, at };
  },
  test(name: string, at = nowIso()): NotificationPayload {
    return { event: 'test', message: `A test message for "${name}" from QEMU Manager`, at };
  },
};

/**
 * Which watched places are low now, and which of them just crossed (were not low at the last
 * check): a crossing is told once; a place must rise back to LOW_FREE_RATIO or above to be told again.
 */
export class LowSpaceTracker {
  private readonly low = new Set<string>();

  check(places: WatchedStorage[]): Array<WatchedStorage & { freeBytes: number; totalBytes: number }> {
    const crossed: Array<WatchedStorage & { freeBytes: number; totalBytes: number }> = [];
    for (const p of places) {
      if (p.freeBytes === null || p.totalBytes === null || p.totalBytes <= 0) continue; // unreadable now: no change
      const key = `${p.kind}\0${p.path}`;
      const isLow = p.freeBytes / p.totalBytes < LOW_FREE_RATIO;
      if (isLow && !this.low.has(key)) {
        this.low.add(key);
        crossed.push({ ...p, freeBytes: p.freeBytes, totalBytes: p.totalBytes });
      } else if (!isLow) this.low.delete(key);
    }
    return crossed;
  }
}

export interface NotificationDeps {
  repo: NotificationRepo;
  log: Logger;
  retryBaseMs: number;
  /** How often free space is checked (0: never, by the timer). */
  storageCheckMs: number;
  storage: () => WatchedStorage[];
  timeoutMs?: number;
}

/** Alerts (issue 14): the endpoints, their queues, and the events that reach them. */
export class NotificationService {
  private readonly queues = new Map<string, EndpointQueue>();
  private readonly lowSpace = new LowSpaceTracker();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: NotificationDeps) {
    if (deps.storageCheckMs > 0) {
      this.timer = setInterval(() => this.checkStorage(), deps.storageCheckMs);
      this.timer.unref();
    }
  }

  list(): Notification[] {
    return this.deps.repo.list().map(toNotification);
  }

  get(id: string): Notification {
    return toNotification(this.require(id));
  }

  create(body: CreateNotificationBody): Notification {
    const e: EndpointRecord = { id: randomUUID(), name: body.name, kind: body.kind, url: null, smtp: null, events: [...body.events], createdAt: nowIso() };
    if (body.kind === 'smtp') {
      if (!body.smtp) throw new AppError('VALIDATION', 'An smtp endpoint needs smtp settings');
      if (body.url !== undefined) throw new AppError('VALIDATION', 'An smtp endpoint takes no url');
      if (body.smtp.password !== undefined && body.smtp.user === undefined) throw new AppError('VALIDATION', 'An SMTP password needs a user');
      e.smtp = { ...body.smtp, to: [...body.smtp.to] };
    } else {
      if (body.smtp !== undefined) throw new AppError('VALIDATION', `A ${body.kind} endpoint takes no smtp settings`);
      if (body.url === undefined) throw new AppError('VALIDATION', `A ${body.kind} endpoint needs a url`);
      e.url = checkUrl(body.url);
    }
    if (this.deps.repo.list().length >= MAX_ENDPOINTS) throw new AppError('LIMIT_EXCEEDED', `At most ${MAX_ENDPOINTS} notification endpoints`);
    this.deps.repo.insert(e);
    return toNotification(e);
  }

  delete(id: string): void {
    this.require(id);
    this.queues.get(id)?.close();
    this.queues.delete(id);
    this.deps.repo.delete(id);
  }

  deliveries(id: string, limit?: number): NotificationDelivery[] {
    this.require(id);
    return this.deps.repo.deliveries(id, limit);
  }

  /** One attempt now (the admin asked and waits for it: bounded by the attempt's timeout), recorded. */
  async test(id: string): Promise<NotificationDelivery> {
    const e = this.require(id);
    const out = await attempt(e, payloads.test(e.name), this.deps.timeoutMs ?? ATTEMPT_TIMEOUT_MS);
    const d: NotificationDelivery = { at: nowIso(), event: 'test', attempt: 1, ok: out.ok, status: out.status, error: out.error, final: true };
    this.deps.repo.recordDelivery(id, d);
    return d;
  }

  /** Queues `p` for every endpoint that wants its event; returns at once. */
  notify(p: NotificationPayload): void {
    for (const e of this.deps.repo.list()) {
      if (!wants(e, p.event)) continue;
      this.queue(e.id).push(p);
    }
  }

  /** The server's events that are alerts: a failed task (backups included). */
  onServerEvent(ev: ServerEvent): void {
    if (ev.type === 'task.updated' && ev.task.status === 'failed') this.notify(payloads.taskFailed({ id: ev.task.id, kind: ev.task.kind, error: ev.task.error ?? null }));
  }

  /** One free-space check (the timer runs it; tests may too). */
  checkStorage(): void {
    let places: WatchedStorage[];
    try {
      places = this.deps.storage();
    } catch (err) {
      this.deps.log.warn({ err }, 'free space could not be checked');
      return;
    }
    for (const p of this.lowSpace.check(places)) this.notify(payloads.storageLow(p));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const q of this.queues.values()) q.close();
    this.queues.clear();
  }

  private queue(id: string): EndpointQueue {
    let q = this.queues.get(id);
    if (!q) {
      q = new EndpointQueue({
        endpoint: () => this.deps.repo.get(id),
        record: (d) => this.deps.repo.recordDelivery(id, d),
        log: this.deps.log,
        retryBaseMs: this.deps.retryBaseMs,
        ...(this.deps.timeoutMs !== undefined ? { timeoutMs: this.deps.timeoutMs } : {}),
      });
      this.queues.set(id, q);
    }
    return q;
  }

  private require(id: string): EndpointRecord {
    const e = this.deps.repo.get(id);
    if (!e) throw new AppError('NOT_FOUND', 'Notification endpoint not found');
    return e;
  }
}

/** An http or https URL with a host and no user:password in it (fetch refuses those; use a token in the path or query). */
export function checkUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AppError('VALIDATION', 'url is not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AppError('VALIDATION', 'url must be http or https');
  if (!u.hostname) throw new AppError('VALIDATION', 'url needs a host');
  if (u.username || u.password) throw new AppError('VALIDATION', 'url must not hold a user or password');
  return u.toString();
}

export type { NotificationEvent };
