// Server-Sent Events from /api/events keep the query cache live without polling.
import type { QueryClient } from '@tanstack/react-query';
import { SERVER_EVENT_TYPES, type ServerEvent, type ServerEventType } from '@qemu-manager/contract';
import { TASK_DONE } from '@qemu-manager/contract';
import type { Backup } from '@qemu-manager/contract';
import { BACKUP_TASK_KINDS, IMAGE_TASK_KINDS, qk, removeDisk, removeVm, SNAPSHOT_TASK_KINDS, upsertDisk, upsertTask, upsertVm } from './queries';

export const EVENT_TYPES: readonly ServerEventType[] = SERVER_EVENT_TYPES;

/** Apply one server event to the cache. */
export function applyServerEvent(qc: QueryClient, ev: ServerEvent): void {
  switch (ev.type) {
    case 'vm.created':
    case 'vm.updated':
      upsertVm(qc, ev.vm);
      return;
    case 'vm.deleted':
      removeVm(qc, ev.id);
      return;
    case 'disk.created':
    case 'disk.updated':
      upsertDisk(qc, ev.disk);
      return;
    case 'disk.deleted':
      removeDisk(qc, ev.id);
      return;
    case 'iso.changed':
      void qc.invalidateQueries({ queryKey: qk.isos });
      return;
    case 'task.created':
    case 'task.updated':
      // Events carry the whole task (progress included): no refetch per progress step.
      upsertTask(qc, ev.task);
      // Snapshots have no events of their own: reload a VM's list when one of its snapshot tasks ends.
      if (ev.task.target.vm && SNAPSHOT_TASK_KINDS.includes(ev.task.kind) && TASK_DONE.includes(ev.task.status)) {
        void qc.invalidateQueries({ queryKey: qk.snapshots(ev.task.target.vm) });
      }
      // A verify changes a backup's state with no backup event; a schedule run changes its schedule.
      if (BACKUP_TASK_KINDS.includes(ev.task.kind) && TASK_DONE.includes(ev.task.status)) {
        void qc.invalidateQueries({ queryKey: [...qk.backups, 'list'] });
        void qc.invalidateQueries({ queryKey: qk.backupTargets });
        if (ev.task.kind === 'backup.schedule') void qc.invalidateQueries({ queryKey: qk.backupSchedules });
      }
      // Images (issue 12) have no events of their own: a download or a create from one changes the list.
      if (IMAGE_TASK_KINDS.includes(ev.task.kind) && TASK_DONE.includes(ev.task.status)) void qc.invalidateQueries({ queryKey: qk.images });
      return;
    // backups (issue 13)
    case 'backup.created':
      void qc.invalidateQueries({ queryKey: [...qk.backups, 'list'] });
      void qc.invalidateQueries({ queryKey: qk.backupTargets });
      return;
    case 'backup.deleted':
      for (const [key, list] of qc.getQueriesData<Backup[]>({ queryKey: [...qk.backups, 'list'] })) {
        if (list?.some((b) => b.id === ev.id)) qc.setQueryData<Backup[]>(key, list.filter((b) => b.id !== ev.id));
      }
      // A merge changes the child it went into.
      void qc.invalidateQueries({ queryKey: [...qk.backups, 'list'] });
      void qc.invalidateQueries({ queryKey: qk.backupTargets });
      return;
    case 'backup.failed':
      qc.setQueryData(qk.backupFailure(ev.vm), { error: ev.error, at: new Date().toISOString(), task: ev.task });
      if (ev.schedule) void qc.invalidateQueries({ queryKey: qk.backupSchedules });
      return;
  }
}

/** Parse one SSE message; null for anything malformed (ignored, never thrown). */
export function parseServerEvent(type: string, data: string): ServerEvent | null {
  if (!(EVENT_TYPES as readonly string[]).includes(type)) return null;
  try {
    const parsed = JSON.parse(data) as Partial<ServerEvent> | null;
    if (!parsed || typeof parsed !== 'object') return null;
    // The event name is authoritative; tolerate a body without `type`.
    return { ...parsed, type } as ServerEvent;
  } catch {
    return null;
  }
}

// ---- connection state + listeners (tiny external store for useSyncExternalStore) ----
export type LiveState = 'connecting' | 'live' | 'reconnecting';
let liveState: LiveState = 'connecting';
const stateListeners = new Set<() => void>();
const eventListeners = new Set<(ev: ServerEvent) => void>();

function setLive(s: LiveState) {
  if (s === liveState) return;
  liveState = s;
  stateListeners.forEach((l) => l());
}

export const liveStore = {
  get: (): LiveState => liveState,
  subscribe: (listener: () => void): (() => void) => {
    stateListeners.add(listener);
    return () => stateListeners.delete(listener);
  },
};

/** Listen to every server event (after it has been applied to the cache). */
export function onServerEvent(listener: (ev: ServerEvent) => void): () => void {
  eventListeners.add(listener);
  return () => eventListeners.delete(listener);
}

/** Open the EventSource. Returns a function that closes it. */
export function connectEvents(qc: QueryClient, url = '/api/events'): () => void {
  if (typeof EventSource === 'undefined') return () => {};
  const source = new EventSource(url);
  source.onopen = () => {
    setLive('live');
    // Anything may have changed while we were not listening (including before the first open).
    void qc.invalidateQueries();
  };
  source.onerror = () => {
    // EventSource retries by itself; if it gave up (CLOSED), reopen after a pause.
    setLive('reconnecting');
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (msg) => {
      const ev = parseServerEvent(type, (msg as MessageEvent<string>).data);
      if (!ev) return;
      applyServerEvent(qc, ev);
      eventListeners.forEach((l) => l(ev));
    });
  }
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let inner: (() => void) | undefined;
  const watchdog = setInterval(() => {
    if (source.readyState === EventSource.CLOSED && !retryTimer) {
      retryTimer = setTimeout(() => {
        inner = connectEvents(qc, url);
      }, 3000);
    }
  }, 1000);
  return () => {
    clearInterval(watchdog);
    if (retryTimer) clearTimeout(retryTimer);
    inner?.();
    source.close();
  };
}
