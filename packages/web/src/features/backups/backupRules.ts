// Backup rules in the browser: the checks the server makes on targets, restores and schedules,
// so a mistake is explained before a request, and the words for a backup's place in its chain.
// The server still decides; its refusals are shown as they come.
import {
  BACKUP_NAME_PATTERN, VM_NAME_PATTERN,
  type Backup, type BackupSchedule, type BackupTarget, type CreateBackupScheduleBody, type Retention, type ServerEvent, type Task, type Vm, type VmStatus,
} from '@qemu-manager/contract';
import { formatDateTime } from '../../lib/format';
import { parseIntStrict } from '../../lib/validation';
import { t } from '../../i18n';
import { selectRetained } from './retention';

const nameRe = new RegExp(BACKUP_NAME_PATTERN);
const vmNameRe = new RegExp(VM_NAME_PATTERN);

// ---- targets ----

/** Why this name cannot be a new target's, or null. */
export function targetNameError(name: string, targets: readonly Pick<BackupTarget, 'name'>[] | undefined): string | null {
  if (!name || name.length > 63 || !nameRe.test(name)) return t.backups.targetNameInvalid;
  if (targets?.some((x) => x.name === name)) return t.backups.targetNameTaken;
  return null;
}

/** Why this path cannot be a target's (the server also checks it is an allowed directory), or null. */
export function targetPathError(path: string): string | null {
  if (!path.trim()) return t.backups.pathRequired;
  if (!path.startsWith('/')) return t.backups.pathNotAbsolute;
  if (path.length > 4096) return t.backups.pathTooLong;
  return null;
}

/** Import: an absolute path to a backup directory. */
export const importPathError = targetPathError;

// ---- one VM's backups ----

/** Why a restore as a new machine with this name cannot be asked for, or null. */
export function restoreNameError(name: string, vms: readonly Pick<Vm, 'name'>[] | undefined): string | null {
  if (!name || name.length > 57 || !vmNameRe.test(name)) return t.backups.restoreNameInvalid;
  if (vms?.some((v) => v.name === name)) return t.backups.restoreNameTaken;
  return null;
}

/** A free name for a machine restored from `base`'s backup: "web-restored", "web-restored2", … */
export function suggestRestoreName(base: string, taken: readonly string[]): string {
  const stem = base.slice(0, 57 - '-restored'.length - 3);
  for (let i = 1; i < 1000; i++) {
    const name = `${stem}-restored${i === 1 ? '' : i}`;
    if (!taken.includes(name)) return name;
  }
  return `${stem}-restored`;
}

/** Why the machine's disks cannot be replaced now (only a stopped machine's can), or null. */
export function replaceBlockedReason(status: VmStatus | undefined): string | null {
  if (status === undefined) return t.backups.replaceNoVm;
  return status === 'stopped' ? null : t.backups.replaceRunning;
}

/** The backups that build on this one directly (its incrementals). */
export function childrenOf(backup: Pick<Backup, 'id'>, all: readonly Backup[] | undefined): Backup[] {
  return (all ?? []).filter((b) => b.parent === backup.id);
}

/** "Full", or "Incremental on 28 Nov 2025, 14:30" (the parent's time, or its id when unknown). */
export function kindLabel(backup: Pick<Backup, 'kind' | 'parent'>, all: readonly Pick<Backup, 'id' | 'createdAt'>[] | undefined): string {
  if (backup.kind === 'full' || !backup.parent) return t.backups.kinds.full;
  const parent = all?.find((b) => b.id === backup.parent);
  return t.backups.incrementalOn(parent ? formatDateTime(parent.createdAt) : backup.parent.slice(0, 8));
}

/** What deleting this backup does to the chain: nothing else, or a merge into the incrementals built on it. */
export function deleteConsequence(backup: Pick<Backup, 'id'>, all: readonly Backup[] | undefined): string {
  const kids = childrenOf(backup, all);
  if (kids.length === 0) return t.backups.deleteAlone;
  return t.backups.deleteMerges(kids.map((k) => formatDateTime(k.createdAt)).join(', '));
}

/** Newest first (ties by id, for a stable list). */
export function sortBackups<T extends Pick<Backup, 'id' | 'createdAt'>>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? -1 : 1));
}

export type BackupFailedEvent = Extract<ServerEvent, { type: 'backup.failed' }>;

const BACKUP_RUN_KINDS: readonly Task['kind'][] = ['backup.create', 'backup.schedule'];

/**
 * The newest backup run of this VM, when it failed: from its task list (newest first) or a
 * `backup.failed` event (a scheduled run), whichever is newer. Null when the newest run did not fail.
 */
export function lastBackupFailure(
  tasks: readonly Task[] | undefined,
  vmId: string,
  event?: { error: string; at: string; task: string } | null,
): { error: string; at: string; task: string } | null {
  const newest = tasks?.find((x) => BACKUP_RUN_KINDS.includes(x.kind) && x.target.vm === vmId && x.status !== 'queued' && x.status !== 'running');
  const fromTask = newest?.status === 'failed' ? { error: newest.error ?? t.errors.unexpected, at: newest.endedAt ?? newest.createdAt, task: newest.id } : null;
  const newestAt = newest ? Date.parse(newest.endedAt ?? newest.createdAt) : -Infinity;
  if (event && event.task !== newest?.id && Date.parse(event.at) > newestAt) return event;
  return fromTask;
}

// ---- schedules ----

export const EVERY_CHOICES = ['hourly', 'daily', 'weekly', 'cron'] as const;
export type EveryChoice = (typeof EVERY_CHOICES)[number];
export const RETENTION_RULES = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const satisfies readonly (keyof Retention)[];
export type RetentionRule = (typeof RETENTION_RULES)[number];

/** What the schedule dialog edits, as the inputs hold it (text). */
export interface ScheduleForm {
  name: string;
  allVms: boolean;
  vms: string[];
  target: string;
  every: EveryChoice;
  cron: string;
  at: string;
  retention: Record<RetentionRule, string>;
  enabled: boolean;
}

export function emptyScheduleForm(): ScheduleForm {
  return { name: '', allVms: true, vms: [], target: 'default', every: 'daily', cron: '', at: '02:00', retention: { keepLast: '7', keepHourly: '', keepDaily: '', keepWeekly: '', keepMonthly: '' }, enabled: true };
}

export function scheduleToForm(s: BackupSchedule): ScheduleForm {
  const known = s.every === 'hourly' || s.every === 'daily' || s.every === 'weekly';
  const retention = Object.fromEntries(RETENTION_RULES.map((r) => [r, s.retention[r] !== undefined ? String(s.retention[r]) : ''])) as Record<RetentionRule, string>;
  return {
    name: s.name,
    allVms: s.vms === 'all',
    vms: s.vms === 'all' ? [] : [...s.vms],
    target: s.target,
    every: known ? (s.every as EveryChoice) : 'cron',
    cron: known ? '' : s.every,
    at: s.at ?? '',
    retention,
    enabled: s.enabled,
  };
}

const CRON_FIELD = /^(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?)*$/;
const CRON_RANGES: readonly [number, number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];

/** Why this is not a 5-field cron expression (minute hour day month weekday, numbers only), or null. */
export function cronError(expr: string): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 || fields.some((f) => !CRON_FIELD.test(f))) return t.backups.cronInvalid;
  for (let i = 0; i < 5; i++) {
    const [min, max] = CRON_RANGES[i]!;
    // A step ("*/15") is a count, not a value in the range; check it is at least 1.
    const steps = [...fields[i]!.matchAll(/\/([0-9]+)/g)].map((m) => Number(m[1]));
    if (steps.some((s) => s < 1)) return t.backups.cronInvalid;
    const values = fields[i]!.replace(/\/[0-9]+/g, '').split(/[,-]/).filter((x) => x !== '*').map(Number);
    if (values.some((v) => v < min || v > max)) return t.backups.cronOutOfRange;
  }
  return null;
}

/** Why `at` does not fit this schedule, or null: "HH:MM" for daily and weekly, minute "MM" for hourly. */
export function atError(every: EveryChoice, at: string): string | null {
  if (every === 'cron' || at === '') return null;
  if (every === 'hourly') return /^[0-5][0-9]$/.test(at) ? null : t.backups.atHourly;
  return /^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(at) ? null : t.backups.atDaily;
}

export type ScheduleErrors = Partial<Record<'name' | 'vms' | 'target' | 'cron' | 'at' | RetentionRule, string>>;

/** The retention rules from the form; a field that is not a whole number 1..10000 is an error. */
export function retentionFromForm(form: Pick<ScheduleForm, 'retention'>): { retention: Retention; errors: ScheduleErrors } {
  const retention: Retention = {};
  const errors: ScheduleErrors = {};
  for (const rule of RETENTION_RULES) {
    const text = form.retention[rule].trim();
    if (!text) continue;
    const n = parseIntStrict(text);
    if (n === null || n < 1 || n > 10000) errors[rule] = t.backups.keepInvalid;
    else retention[rule] = n;
  }
  return { retention, errors };
}

/**
 * Check the form and build the request body. `others` are the schedules whose names it must not
 * take (all of them but the one edited).
 */
export function validateSchedule(
  form: ScheduleForm,
  others: readonly Pick<BackupSchedule, 'name'>[] | undefined,
): { errors: ScheduleErrors; body: CreateBackupScheduleBody | null } {
  const errors: ScheduleErrors = {};
  if (!form.name || form.name.length > 63 || !nameRe.test(form.name)) errors.name = t.backups.scheduleNameInvalid;
  else if (others?.some((s) => s.name === form.name)) errors.name = t.backups.scheduleNameTaken;
  if (!form.allVms && form.vms.length === 0) errors.vms = t.backups.vmsRequired;
  if (!form.target) errors.target = t.backups.targetRequired;
  if (form.every === 'cron') {
    const c = cronError(form.cron);
    if (c) errors.cron = c;
  }
  const a = atError(form.every, form.at);
  if (a) errors.at = a;
  const r = retentionFromForm(form);
  Object.assign(errors, r.errors);
  if (Object.keys(errors).length > 0) return { errors, body: null };
  return {
    errors,
    body: {
      name: form.name,
      vms: form.allVms ? 'all' : [...form.vms],
      target: form.target,
      every: form.every === 'cron' ? form.cron.trim().replace(/\s+/g, ' ') : form.every,
      at: form.every === 'cron' || form.at === '' ? null : form.at,
      retention: r.retention,
      enabled: form.enabled,
    },
  };
}

// ---- retention preview ----

export interface PreviewRow {
  backup: Backup;
  keep: boolean;
  /** The rules that keep it, in words ("last 2", "daily"). */
  reasons: string[];
  /** Pruned, but a kept backup builds on it: its data is merged into that one, not lost. */
  merged: boolean;
}
export interface PreviewGroup {
  vm: string;
  vmName: string;
  rows: PreviewRow[];
  keep: number;
  prune: number;
}

/**
 * What the retention rules would do to the current backups of the chosen VMs on the target: the
 * rules apply to each VM's backups on its own, newest first.
 */
export function retentionPreview(
  backups: readonly Backup[] | undefined,
  scope: { vms: 'all' | readonly string[]; target: string },
  retention: Retention,
  timeZone?: string,
): PreviewGroup[] {
  const chosen = (backups ?? []).filter((b) => b.target === scope.target && (scope.vms === 'all' || scope.vms.includes(b.vm)));
  const byVm = new Map<string, Backup[]>();
  for (const b of chosen) byVm.set(b.vm, [...(byVm.get(b.vm) ?? []), b]);
  const groups: PreviewGroup[] = [];
  for (const [vm, list] of byVm) {
    const sel = selectRetained(list, retention, timeZone);
    const keep = new Set(sel.keep);
    // Every backup a kept one builds on, however far down its chain.
    const needed = new Set<string>();
    const byId = new Map(list.map((b) => [b.id, b]));
    for (const id of keep) {
      for (let p = byId.get(id)?.parent; p && !needed.has(p); p = byId.get(p)?.parent) needed.add(p);
    }
    const rows = sortBackups(list).map((backup) => ({
      backup,
      keep: keep.has(backup.id),
      // Only a kept backup's reasons are shown: the rule that keeps it.
      reasons: keep.has(backup.id) ? (sel.reasons[backup.id] ?? []).map((r) => ruleWords(r, retention)) : [],
      merged: !keep.has(backup.id) && needed.has(backup.id),
    }));
    groups.push({ vm, vmName: list[0]!.vmName, rows, keep: keep.size, prune: rows.length - keep.size });
  }
  return groups.sort((a, b) => a.vmName.localeCompare(b.vmName));
}

/** "keepDaily 1/7: 2025-11-01" (the rule first, then its count and period) in words: "daily (7)". */
function ruleWords(reason: string, retention: Retention): string {
  const words = t.backups.ruleReasons as Record<string, (n: number) => string>;
  const rule = /^[A-Za-z]+/.exec(reason)?.[0] ?? '';
  const n = retention[rule as keyof Retention];
  return Object.prototype.hasOwnProperty.call(words, rule) && n !== undefined ? words[rule]!(n) : reason;
}
