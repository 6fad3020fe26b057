// Query keys, cache helpers and the read hooks. Lists are kept live by ./events.ts.
import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import type { Disk, Task, Vm } from '@qemu-manager/contract';
import { authApi, disksApi, isosApi, systemApi, tasksApi, tokensApi, vmsApi, type TaskFilter } from './endpoints';

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
