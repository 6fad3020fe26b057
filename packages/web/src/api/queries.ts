// Query keys, cache helpers and the read hooks. Lists are kept live by ./events.ts.
import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { TASK_DONE, type Disk, type Task, type Vm } from '@qemu-manager/contract';
import { authApi, backupSchedulesApi, cloudInitApi, imagesApi, backupsApi, backupTargetsApi, disksApi, isosApi, snapshotsApi, systemApi, tasksApi, tokensApi, vmsApi, type BackupFilter, type TaskFilter } from './endpoints';

export const qk = {
  vms: ['vms'] as const,
  vm: (id: string) => ['vms', id] as const,
  disks: ['disks'] as const,
  disk: (id: string) => ['disks', id] as const,
  isos: ['isos'] as const,
  health: ['health'] as const,
  auth: ['auth'] as const,
  tokens: ['tokens'] as const,
  audit: ['audit'] as const,
  /** Every task list, whatever its filter (the prefix of taskList). */
  tasks: ['tasks'] as const,
  taskList: (filter: TaskFilter = {}) =>
    ['tasks', 'list', { vm: filter.vm ?? null, disk: filter.disk ?? null, limit: filter.limit ?? null }] as const,
  /** One task followed by a dialog that started it (storage, issue 10). */
  task: (id: string) => ['tasks', 'one', id] as const,
  /** A VM's snapshots (storage, issue 10). */
  snapshots: (vmId: string) => ['snapshots', vmId] as const,
  // backups (issue 13)
  /** Every backup list, whatever its filter (the prefix of backupList). */
  backups: ['backups'] as const,
  backupList: (filter: BackupFilter = {}) => ['backups', 'list', { vm: filter.vm ?? null, target: filter.target ?? null }] as const,
  /** The last `backup.failed` event seen for a VM (a scheduled run that failed). */
  backupFailure: (vmId: string) => ['backups', 'failed', vmId] as const,
  backupTargets: ['backup-targets'] as const,
  backupSchedules: ['backup-schedules'] as const,
  // issue 12
  images: ['images'] as const,
  imageCatalogue: ['image-catalogue'] as const,
  cloudInit: (vmId: string) => ['cloud-init', vmId] as const,
};

function upsertById<T extends { id: string }>(list: T[] | undefined, item: T): T[] | undefined {
  if (!list) return list;
  const i = list.findIndex((x) => x.id === item.id);
  if (i === -1) return [...list, item];
  const next = list.slice();
  next[i] = item;
  return next;
}

export function upsertVm(qc: QueryClient, vm: Vm): void {
  qc.setQueryData<Vm[]>(qk.vms, (old) => upsertById(old, vm));
  qc.setQueryData<Vm>(qk.vm(vm.id), vm);
}

export function removeVm(qc: QueryClient, id: string): void {
  qc.setQueryData<Vm[]>(qk.vms, (old) => old?.filter((v) => v.id !== id));
  qc.removeQueries({ queryKey: qk.vm(id), exact: true });
}

export function upsertDisk(qc: QueryClient, disk: Disk): void {
  // List entries may not carry `info`; keep the one we already have when the event has none.
  qc.setQueryData<Disk[]>(qk.disks, (old) => {
    const prev = old?.find((d) => d.id === disk.id);
    return upsertById(old, disk.info || !prev?.info ? disk : { ...disk, info: prev.info });
  });
  const detail = qc.getQueryData<Disk>(qk.disk(disk.id));
  if (detail) {
    qc.setQueryData<Disk>(qk.disk(disk.id), { ...detail, ...disk, info: disk.info ?? detail.info });
    // Sizes on the host change after creation/attachment; refresh the qemu-img info quietly.
    void qc.invalidateQueries({ queryKey: qk.disk(disk.id), exact: true });
  }
}

/**
 * Add a disk from a create answer. Its server events may have come first (creation is often done
 * before the answer is read): an entry already there is at least as new, so it stays.
 */
export function addCreatedDisk(qc: QueryClient, disk: Disk): void {
  if (qc.getQueryData<Disk[]>(qk.disks)?.some((d) => d.id === disk.id)) return;
  upsertDisk(qc, disk);
}

export function removeDisk(qc: QueryClient, id: string): void {
  qc.setQueryData<Disk[]>(qk.disks, (old) => old?.filter((d) => d.id !== id));
  qc.removeQueries({ queryKey: qk.disk(id), exact: true });
}

export const useVms = () => useQuery({ queryKey: qk.vms, queryFn: ({ signal }) => vmsApi.list(signal) });

export function useVm(id: string) {
  const qc = useQueryClient();
  return useQuery({
    queryKey: qk.vm(id),
    queryFn: ({ signal }) => vmsApi.get(id, signal),
    initialData: () => qc.getQueryData<Vm[]>(qk.vms)?.find((v) => v.id === id),
    initialDataUpdatedAt: () => qc.getQueryState(qk.vms)?.dataUpdatedAt,
    retry: (count, err) => (err as { status?: number }).status !== 404 && count < 2,
  });
}

export const useDisks = () => useQuery({ queryKey: qk.disks, queryFn: ({ signal }) => disksApi.list(signal) });

/** Disk detail including qemu-img info. Only fetched for ready disks (info needs the file). */
export const useDiskInfo = (disk: Disk) =>
  useQuery({
    queryKey: qk.disk(disk.id),
    queryFn: ({ signal }) => disksApi.get(disk.id, signal),
    enabled: disk.status === 'ready' && !disk.info,
    staleTime: 10_000,
  });

export const useIsos = () => useQuery({ queryKey: qk.isos, queryFn: ({ signal }) => isosApi.list(signal) });

/** API tokens (admin only; no server events, so mutations update this cache themselves). */
export const useTokens = (enabled = true) =>
  useQuery({ queryKey: qk.tokens, queryFn: ({ signal }) => tokensApi.list(signal), enabled });

/** Whether this browser may use the API (loopback servers need no login). */
export const useAuthStatus = () =>
  useQuery({ queryKey: qk.auth, queryFn: ({ signal }) => authApi.status(signal), staleTime: 60_000, retry: 2 });

export const useHealth = () =>
  useQuery({ queryKey: qk.health, queryFn: ({ signal }) => systemApi.health(signal), staleTime: 5 * 60_000 });

// ---- tasks ----

/** How many tasks the header and the panel keep (newest first). */
export const TASK_PANEL_LIMIT = 50;
/** How many a VM's or disk's "Recent tasks" section shows. */
export const RECENT_TASKS_LIMIT = 8;

type TaskListKey = ReturnType<typeof qk.taskList>;

/** Whether a task belongs in a list with this filter. */
export function taskMatches(task: Task, filter: TaskListKey[2]): boolean {
  if (filter.vm && task.target.vm !== filter.vm) return false;
  if (filter.disk && task.target.disk !== filter.disk) return false;
  return true;
}

/**
 * Put a task (from an event) into every loaded task list it belongs in: replaced where it is,
 * otherwise added at the top (lists are newest first), keeping each list to its limit.
 */
export function upsertTask(qc: QueryClient, task: Task): void {
  for (const [key, list] of qc.getQueriesData<Task[]>({ queryKey: [...qk.tasks, 'list'] })) {
    if (!list) continue;
    const filter = (key as unknown as TaskListKey)[2];
    if (!filter || !taskMatches(task, filter)) continue;
    const i = list.findIndex((x) => x.id === task.id);
    let next: Task[];
    if (i === -1) {
      next = [task, ...list];
      if (filter.limit !== null && next.length > filter.limit) next = next.slice(0, filter.limit);
    } else {
      next = list.slice();
      next[i] = task;
    }
    qc.setQueryData<Task[]>(key, next);
  }
}

/** Tasks, newest first: all of them, or one VM's or one disk's. Kept live by task events. */
export const useTasks = (filter: TaskFilter = {}, enabled = true) =>
  useQuery({ queryKey: qk.taskList(filter), queryFn: ({ signal }) => tasksApi.list(filter, signal), enabled });

// ---- storage (issue 10) ----

/** The task kinds that change a VM's snapshot list. */
export const SNAPSHOT_TASK_KINDS: readonly Task['kind'][] = ['vm.snapshot', 'vm.revert', 'vm.snapshot.delete'];

/** A VM's snapshots, oldest first. Refreshed when one of its snapshot tasks ends (see events.ts). */
export const useSnapshots = (vmId: string) =>
  useQuery({ queryKey: qk.snapshots(vmId), queryFn: ({ signal }) => snapshotsApi.list(vmId, signal) });

/** Of two versions of one task, the one further along (an ended one wins; otherwise the later update). */
export function newerTask(a: Task | undefined, b: Task | undefined): Task | undefined {
  if (!a || !b) return a ?? b;
  const doneA = TASK_DONE.includes(a.status);
  const doneB = TASK_DONE.includes(b.status);
  if (doneA !== doneB) return doneA ? a : b;
  return b.progress > a.progress || (b.status === 'running' && a.status === 'queued') ? b : a;
}

/**
 * Follow one task until it ends: whatever the live task lists (kept up to date by events) say,
 * plus a slow poll of the task itself in case its events are not in any loaded list.
 */
export function useTask(initial: Task | null) {
  const qc = useQueryClient();
  const id = initial?.id ?? '';
  const polled = useQuery({
    queryKey: qk.task(id),
    queryFn: ({ signal }) => tasksApi.get(id, signal),
    enabled: !!initial,
    initialData: initial ?? undefined,
    refetchInterval: (q) => (q.state.data && TASK_DONE.includes(q.state.data.status) ? false : 1000),
  });
  if (!initial) return undefined;
  let best: Task | undefined = polled.data;
  for (const [, list] of qc.getQueriesData<Task[]>({ queryKey: [...qk.tasks, 'list'] })) {
    best = newerTask(best, list?.find((x) => x.id === id));
  }
  return best;
}

// ---- backups (issue 13) ----

/** The task kinds that change a backup list (a new, verified, merged or removed backup). */
export const BACKUP_TASK_KINDS: readonly Task['kind'][] = ['backup.create', 'backup.verify', 'backup.restore', 'backup.delete', 'backup.import', 'backup.schedule'];

/** Backups, as the server lists them; refreshed by the backup events and when a backup task ends. */
export const useBackups = (filter: BackupFilter = {}, enabled = true) =>
  useQuery({ queryKey: qk.backupList(filter), queryFn: ({ signal }) => backupsApi.list(filter, signal), enabled, retry: (n, err) => (err as { status?: number }).status !== 404 && n < 1 });

export const useBackupTargets = () =>
  useQuery({ queryKey: qk.backupTargets, queryFn: ({ signal }) => backupTargetsApi.list(signal), retry: (n, err) => (err as { status?: number }).status !== 404 && n < 1 });

export const useBackupSchedules = () =>
  useQuery({ queryKey: qk.backupSchedules, queryFn: ({ signal }) => backupSchedulesApi.list(signal), retry: (n, err) => (err as { status?: number }).status !== 404 && n < 1 });

/** The last failed scheduled backup of a VM seen as an event in this page's life, or null. */
export const useBackupFailure = (vmId: string) =>
  useQuery<{ error: string; at: string; task: string } | null>({ queryKey: qk.backupFailure(vmId), queryFn: () => null, staleTime: Infinity, gcTime: Infinity });

/**
 * Reload what a finished backup task may have changed (lists, targets' counts, schedules' last run).
 * Events do this too; this covers a task whose events this page did not get.
 */
export function useRefreshBackups(): () => void {
  const qc = useQueryClient();
  return () => {
    void qc.invalidateQueries({ queryKey: qk.backups });
    void qc.invalidateQueries({ queryKey: qk.backupTargets });
    void qc.invalidateQueries({ queryKey: qk.backupSchedules });
  };
}

// ---- images and cloud-init (issue 12) ----

/** The task kinds that change the image list (a download, or a create whose disk backs onto one). */
export const IMAGE_TASK_KINDS: readonly Task['kind'][] = ['image.download', 'vm.create'];

const no404 = (n: number, err: unknown) => (err as { status?: number }).status !== 404 && n < 1;

export const useImages = (enabled = true) =>
  useQuery({ queryKey: qk.images, queryFn: ({ signal }) => imagesApi.list(signal), enabled, retry: no404 });

export const useImageCatalogue = () =>
  useQuery({ queryKey: qk.imageCatalogue, queryFn: ({ signal }) => imagesApi.catalogue(signal), staleTime: 10 * 60_000, retry: no404 });

/** A VM's cloud-init config; only asked for when the VM says it has one (null otherwise). */
export const useCloudInit = (vm: Pick<Vm, 'id' | 'cloudInit'>) =>
  useQuery({
    queryKey: [...qk.cloudInit(vm.id), vm.cloudInit],
    queryFn: ({ signal }) => (vm.cloudInit ? cloudInitApi.get(vm.id, signal) : Promise.resolve(null)),
    retry: no404,
  });
