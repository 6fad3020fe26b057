// Tasks in words: what a task does, on what, how far it got and when. Pure, for the panel and
// the "Recent tasks" sections.
import type { Disk, Task, TaskStatus, Vm } from '@qemu-manager/contract';
import { formatBytes, formatDuration, percent, relativeTime } from '../../lib/format';
import { t } from '../../i18n';
import { paths } from '../../router';

const ACTIVE: readonly TaskStatus[] = ['queued', 'running'];

/** Still to finish: waiting or running. Only these can be cancelled. */
export function isActive(task: Pick<Task, 'status'>): boolean {
  return ACTIVE.includes(task.status);
}

/** How many of these tasks are waiting or running (the number on the header button). */
export function activeCount(tasks: readonly Pick<Task, 'status'>[] | undefined): number {
  return tasks ? tasks.filter(isActive).length : 0;
}

/** "Create disk"; a kind this UI does not know yet is shown as the server names it. */
export function describeKind(kind: string): string {
  const words = t.tasks.kinds as Record<string, string>;
  return Object.prototype.hasOwnProperty.call(words, kind) ? words[kind]! : kind;
}

export function describeStatus(status: string): string {
  const words = t.tasks.statuses as Record<string, string>;
  return Object.prototype.hasOwnProperty.call(words, status) ? words[status]! : status;
}

/**
 * The bar's value 0..100, or undefined for an indeterminate stripe (running, but nothing measured
 * yet). A finished task's bar is full when it succeeded and stays where it stopped otherwise.
 */
export function taskPercent(task: Pick<Task, 'status' | 'progress' | 'bytesDone' | 'bytesTotal'>): number | undefined {
  if (task.status === 'succeeded') return 100;
  if (task.status === 'running' && task.progress <= 0 && task.bytesDone === 0) return undefined;
  if (task.bytesTotal !== null && task.bytesTotal > 0 && task.progress <= 0) return percent(task.bytesDone, task.bytesTotal);
  return percent(task.progress, 1);
}

/** "256 MiB of 1 GiB", "12 MiB so far", or null when the task reports no bytes. */
export function bytesLabel(task: Pick<Task, 'bytesDone' | 'bytesTotal'>): string | null {
  if (task.bytesTotal !== null && task.bytesTotal > 0) return t.tasks.bytes(formatBytes(task.bytesDone), formatBytes(task.bytesTotal));
  if (task.bytesDone > 0) return t.tasks.bytesSoFar(formatBytes(task.bytesDone));
  return null;
}

export interface TargetPart {
  kind: 'vm' | 'disk';
  id: string;
  /** "Machine web1", "Disk data (deleted)". */
  label: string;
  /** Where to see it; null once it is gone. */
  href: string | null;
}

/** The VM and/or disk a task works on, named from the lists the UI has (ids when unknown). */
export function describeTarget(task: Pick<Task, 'target'>, vms: readonly Pick<Vm, 'id' | 'name'>[] | undefined, disks: readonly Pick<Disk, 'id' | 'name'>[] | undefined): TargetPart[] {
  const parts: TargetPart[] = [];
  const short = (id: string) => id.slice(0, 8);
  if (task.target.vm) {
    const id = task.target.vm;
    const vm = vms?.find((v) => v.id === id);
    // A list that has loaded without it means the VM was deleted; before it loads, just the id.
    parts.push({ kind: 'vm', id, label: t.tasks.vm(vm ? vm.name : vms ? `${short(id)} (${t.tasks.gone})` : short(id)), href: vm || !vms ? paths.vm(id) : null });
  }
  if (task.target.disk) {
    const id = task.target.disk;
    const disk = disks?.find((d) => d.id === id);
    parts.push({ kind: 'disk', id, label: t.tasks.disk(disk ? disk.name : disks ? `${short(id)} (${t.tasks.gone})` : short(id)), href: disk || !disks ? paths.disks : null });
  }
  return parts;
}

/** "Started 3 min ago · ended just now · took 2 min", or "Queued just now" while it waits. */
export function timeLabel(task: Pick<Task, 'createdAt' | 'startedAt' | 'endedAt'>, now: number): string {
  const parts: string[] = [];
  parts.push(task.startedAt ? t.tasks.startedAt(relativeTime(task.startedAt, now, t.time)) : t.tasks.queuedAt(relativeTime(task.createdAt, now, t.time)));
  if (task.endedAt) {
    parts.push(t.tasks.endedAt(relativeTime(task.endedAt, now, t.time)));
    const from = Date.parse(task.startedAt ?? task.createdAt);
    const to = Date.parse(task.endedAt);
    if (Number.isFinite(from) && Number.isFinite(to) && to >= from) parts.push(t.tasks.took(formatDuration(to - from)));
  }
  return parts.join(' · ');
}

/** The newest waiting or running task on this VM and/or disk (lists are newest first), if any. */
export function activeTaskFor(tasks: readonly Task[] | undefined, target: { vm?: string; disk?: string }): Task | undefined {
  return tasks?.find((x) => isActive(x) && (!target.vm || x.target.vm === target.vm) && (!target.disk || x.target.disk === target.disk));
}
