import { describe, expect, it } from 'vitest';
import type { Backup, BackupSchedule, Task } from '@qemu-manager/contract';
import { task } from '../../test/fixtures';
import {
  atError, cronError, deleteConsequence, emptyScheduleForm, kindLabel, lastBackupFailure, replaceBlockedReason, restoreNameError,
  retentionPreview, scheduleToForm, suggestRestoreName, targetNameError, targetPathError, validateSchedule,
} from './backupRules';
import { selectRetained } from './retention';

const VM_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const VM_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
let n = 0;
function backup(over: Partial<Backup> = {}): Backup {
  n += 1;
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    vm: VM_A, vmName: 'alpha', target: 'default', createdAt: '2025-11-28T14:00:00.000Z', kind: 'full', parent: null,
    sizeBytes: 1024, verifiedAt: null, state: 'ok', frozen: false, disks: [], ...over,
  };
}

describe('targets', () => {
  it('names follow the VM name rule and must be free', () => {
    expect(targetNameError('nas', [{ name: 'default' }])).toBeNull();
    expect(targetNameError('default', [{ name: 'default' }])).toMatch(/already exists/);
    expect(targetNameError('-x', [])).toMatch(/letters, digits/);
    expect(targetNameError('', [])).toMatch(/letters, digits/);
    expect(targetNameError('a'.repeat(64), [])).toMatch(/at most 63/);
  });
  it('a path must be absolute', () => {
    expect(targetPathError('/mnt/nas')).toBeNull();
    expect(targetPathError('mnt/nas')).toMatch(/absolute/);
    expect(targetPathError('  ')).toMatch(/Enter a directory/);
    expect(targetPathError('/' + 'a'.repeat(4096))).toMatch(/4096/);
  });
});

describe('restore', () => {
  it('a new machine needs a free, valid name of at most 57; the suggestion is free', () => {
    expect(restoreNameError('web-restored', [{ name: 'web' }])).toBeNull();
    expect(restoreNameError('web', [{ name: 'web' }])).toMatch(/already exists/);
    expect(restoreNameError('a'.repeat(58), [])).toMatch(/at most 57/);
    expect(restoreNameError('bad name', [])).toMatch(/letters/);
    expect(suggestRestoreName('web', ['web', 'web-restored'])).toBe('web-restored2');
    expect(suggestRestoreName('w'.repeat(63), []).length).toBeLessThanOrEqual(57);
  });
  it('replace is only for a stopped machine that still exists, with the reason', () => {
    expect(replaceBlockedReason('stopped')).toBeNull();
    expect(replaceBlockedReason('running')).toBe('Stop the machine to replace its disks.');
    expect(replaceBlockedReason('paused')).toMatch(/Stop the machine/);
    expect(replaceBlockedReason(undefined)).toMatch(/restore it as a new one/);
  });
});

describe('chains', () => {
  it('an incremental names its parent; deleting a parent says it is merged into its children', () => {
    const full = backup({ createdAt: '2025-11-28T10:00:00.000Z' });
    const inc = backup({ kind: 'incremental', parent: full.id, createdAt: '2025-11-28T11:00:00.000Z' });
    const all = [full, inc];
    expect(kindLabel(full, all)).toBe('Full');
    expect(kindLabel(inc, all)).toMatch(/^Incremental on .*2025/);
    expect(kindLabel(inc, [inc])).toBe(`Incremental on ${full.id.slice(0, 8)}`);
    expect(deleteConsequence(inc, all)).toMatch(/cannot be undone/);
    const merge = deleteConsequence(full, all);
    expect(merge).toMatch(/merged into them, not lost/);
    expect(merge).toMatch(/2025/);
  });

  it('the newest backup run of the VM, when it failed, is the failure shown; a later success clears it', () => {
    const vmTask = (over: Partial<Task>) => task({ target: { vm: VM_A, disk: null }, ...over });
    const failed = vmTask({ id: 't1', kind: 'backup.create', status: 'failed', error: 'no space left on the target', endedAt: '2025-11-28T10:00:00.000Z' });
    const ok = vmTask({ id: 't2', kind: 'backup.create', status: 'succeeded', endedAt: '2025-11-28T11:00:00.000Z' });
    const verify = vmTask({ id: 't3', kind: 'backup.verify', status: 'failed', error: 'corrupt', endedAt: '2025-11-28T12:00:00.000Z' });
    expect(lastBackupFailure([verify, failed], VM_A)).toEqual({ error: 'no space left on the target', at: failed.endedAt, task: 't1' });
    expect(lastBackupFailure([ok, failed], VM_A)).toBeNull();
    expect(lastBackupFailure([failed], VM_B)).toBeNull();
    // A scheduled run's failure (event) newer than the last run in the list is shown.
    const ev = { error: 'interrupted', at: '2025-11-28T13:00:00.000Z', task: 't9' };
    expect(lastBackupFailure([ok], VM_A, ev)).toEqual(ev);
    expect(lastBackupFailure([ok], VM_A, { ...ev, at: '2025-11-28T09:00:00.000Z' })).toBeNull();
  });
});

describe('schedule form', () => {
  it('cron: five numeric fields in range', () => {
    expect(cronError('30 2 * * 1-5')).toBeNull();
    expect(cronError('*/15 * * * *')).toBeNull();
    expect(cronError('0 0,12 1 */2 0')).toBeNull();
    expect(cronError('* * * *')).toMatch(/Five fields/);
    expect(cronError('@daily')).toMatch(/Five fields/);
    expect(cronError('60 * * * *')).toMatch(/out of range/);
    expect(cronError('0 24 * * *')).toMatch(/out of range/);
    expect(cronError('0 0 0 * *')).toMatch(/out of range/);
    expect(cronError('*/0 * * * *')).toMatch(/Five fields/);
  });
  it('at: a minute for hourly, HH:MM for daily and weekly, nothing for cron', () => {
    expect(atError('hourly', '15')).toBeNull();
    expect(atError('hourly', '02:00')).toMatch(/minute/);
    expect(atError('daily', '02:00')).toBeNull();
    expect(atError('weekly', '24:00')).toMatch(/HH:MM/);
    expect(atError('daily', '')).toBeNull();
    expect(atError('cron', 'anything')).toBeNull();
  });
  it('builds the body the contract asks for, or says what is wrong per field', () => {
    const form = { ...emptyScheduleForm(), name: 'nightly', retention: { keepLast: '2', keepHourly: '', keepDaily: ' 7 ', keepWeekly: '', keepMonthly: '' } };
    expect(validateSchedule(form, [])).toEqual({
      errors: {},
      body: { name: 'nightly', vms: 'all', target: 'default', every: 'daily', at: '02:00', retention: { keepLast: 2, keepDaily: 7 }, enabled: true },
    });
    const cron = validateSchedule({ ...form, every: 'cron', cron: ' 30  2 * * 1-5 ', at: '02:00' }, []);
    expect(cron.body).toMatchObject({ every: '30 2 * * 1-5', at: null });
    const bad = validateSchedule({ ...form, name: 'nightly', allVms: false, vms: [], every: 'hourly', at: '2:00', retention: { ...form.retention, keepLast: '0', keepWeekly: 'x' } }, [{ name: 'nightly' }]);
    expect(bad.body).toBeNull();
    expect(Object.keys(bad.errors).sort()).toEqual(['at', 'keepLast', 'keepWeekly', 'name', 'vms']);
    expect(bad.errors.name).toMatch(/already exists/);
  });
  it('an existing schedule round-trips through the form', () => {
    const s: BackupSchedule = {
      id: 's1', name: 'weekdays', vms: [VM_A], target: 'nas', every: '30 2 * * 1-5', at: null, retention: { keepLast: 3, keepMonthly: 6 },
      enabled: false, nextRunAt: null, lastRunAt: null, lastTask: null, lastStatus: null, createdAt: '2025-11-28T14:00:00.000Z',
    };
    const form = scheduleToForm(s);
    expect(form).toMatchObject({ every: 'cron', cron: '30 2 * * 1-5', allVms: false, vms: [VM_A], enabled: false });
    expect(validateSchedule(form, []).body).toEqual({ name: 'weekdays', vms: [VM_A], target: 'nas', every: '30 2 * * 1-5', at: null, retention: { keepLast: 3, keepMonthly: 6 }, enabled: false });
  });
});

describe('retention (the contract’s selectRetained, as the preview uses it)', () => {
  const at = (iso: string, over: Partial<Backup> = {}) => backup({ createdAt: iso, ...over });

  it('keepLast keeps the newest N and prunes the rest; no rule keeps everything', () => {
    const list = [at('2025-11-01T00:00:00Z'), at('2025-11-02T00:00:00Z'), at('2025-11-03T00:00:00Z'), at('2025-11-04T00:00:00Z')];
    const sel = selectRetained(list, { keepLast: 2 }, 'UTC');
    expect(sel.keep).toEqual([list[3]!.id, list[2]!.id]);
    expect(sel.prune).toEqual([list[1]!.id, list[0]!.id]);
    expect(sel.reasons[list[3]!.id]![0]).toMatch(/^keepLast\b/);
    expect(selectRetained(list, {}, 'UTC').prune).toEqual([]);
  });

  it('daily keeps the newest of each day; a day covered by keepLast does not count again', () => {
    const d1a = at('2025-11-01T08:00:00Z');
    const d1b = at('2025-11-01T20:00:00Z');
    const d2a = at('2025-11-02T08:00:00Z');
    const d2b = at('2025-11-02T20:00:00Z');
    const d3 = at('2025-11-03T08:00:00Z');
    const list = [d1a, d1b, d2a, d2b, d3];
    expect(selectRetained(list, { keepDaily: 2 }, 'UTC').keep).toEqual([d3.id, d2b.id]);
    // keepLast 1 keeps d3; daily 2 then keeps the newest of the two other days.
    const sel = selectRetained(list, { keepLast: 1, keepDaily: 2 }, 'UTC');
    expect(sel.keep).toEqual([d3.id, d2b.id, d1b.id]);
    expect(sel.reasons[d1b.id]![0]).toMatch(/^keepDaily\b/);
  });

  it('days follow the time zone given', () => {
    const a = at('2025-11-01T23:30:00Z');
    const b = at('2025-11-02T00:30:00Z');
    expect(selectRetained([a, b], { keepDaily: 5 }, 'UTC').keep).toEqual([b.id, a.id]);
    // In Berlin both are on 2 November: only the newer is kept.
    expect(selectRetained([a, b], { keepDaily: 5 }, 'Europe/Berlin').keep).toEqual([b.id]);
  });

  it('weekly uses ISO weeks (a Sunday and the next Monday are two weeks)', () => {
    const sun = at('2025-11-30T12:00:00Z');
    const mon = at('2025-12-01T12:00:00Z');
    const sat = at('2025-11-29T12:00:00Z');
    expect(selectRetained([sat, sun, mon], { keepWeekly: 4 }, 'UTC').keep).toEqual([mon.id, sun.id]);
  });

  it('the preview groups the chosen VMs’ backups on the chosen target, each VM on its own', () => {
    const a1 = at('2025-11-01T00:00:00Z');
    const a2 = at('2025-11-02T00:00:00Z');
    const a3 = at('2025-11-03T00:00:00Z', { kind: 'incremental', parent: a2.id });
    const b1 = at('2025-11-01T00:00:00Z', { vm: VM_B, vmName: 'beta' });
    const elsewhere = at('2025-11-04T00:00:00Z', { target: 'nas' });
    const all = [a1, a2, a3, b1, elsewhere];
    const groups = retentionPreview(all, { vms: 'all', target: 'default' }, { keepLast: 2 }, 'UTC');
    expect(groups.map((g) => [g.vmName, g.keep, g.prune])).toEqual([['alpha', 2, 1], ['beta', 1, 0]]);
    expect(groups[0]!.rows.map((r) => [r.backup.id, r.keep, r.reasons, r.merged])).toEqual([[a3.id, true, ['last 2'], false], [a2.id, true, ['last 2'], false], [a1.id, false, [], false]]);
    // keepLast 1 keeps only the incremental: the full it builds on is pruned by merging it in.
    const one = retentionPreview(all, { vms: [VM_A], target: 'default' }, { keepLast: 1 }, 'UTC')[0]!;
    expect(one.rows.map((r) => [r.keep, r.merged])).toEqual([[true, false], [false, true], [false, false]]);
    expect(retentionPreview(all, { vms: [VM_B], target: 'default' }, { keepLast: 2 }).map((g) => g.vmName)).toEqual(['beta']);
    expect(retentionPreview(all, { vms: 'all', target: 'nas' }, {}).map((g) => [g.vmName, g.keep])).toEqual([['alpha', 1]]);
    expect(retentionPreview(undefined, { vms: 'all', target: 'default' }, {})).toEqual([]);
  });
});
