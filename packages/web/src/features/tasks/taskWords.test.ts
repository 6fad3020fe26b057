import { describe, expect, it } from 'vitest';
import { activeCount, activeTaskFor, bytesLabel, describeKind, describeStatus, describeTarget, isActive, taskPercent, timeLabel } from './taskWords';
import { disk, task, vm } from '../../test/fixtures';

const MiB = 1024 * 1024;

describe('describeKind / describeStatus', () => {
  it('puts every kind and status into words', () => {
    expect(describeKind('disk.create')).toBe('Create disk');
    expect(describeKind('disk.resize')).toBe('Resize disk');
    expect(describeKind('vm.snapshot')).toBe('Take snapshot');
    expect(describeKind('vm.revert')).toBe('Revert to snapshot');
    expect(describeKind('vm.snapshot.delete')).toBe('Delete snapshot');
    expect(describeKind('vm.clone')).toBe('Clone machine');
    expect(describeStatus('queued')).toBe('Waiting');
    expect(describeStatus('succeeded')).toBe('Done');
    expect(describeStatus('cancelled')).toBe('Cancelled');
  });
  it('shows a kind it does not know as the server names it, and never an inherited property', () => {
    expect(describeKind('disk.teleport')).toBe('disk.teleport');
    expect(describeKind('constructor')).toBe('constructor');
    expect(describeStatus('toString')).toBe('toString');
  });
});

describe('isActive / activeCount', () => {
  it('counts waiting and running tasks only', () => {
    const list = [task({ status: 'queued' }), task({ status: 'running' }), task({ status: 'succeeded' }), task({ status: 'failed' }), task({ status: 'cancelled' })];
    expect(list.map(isActive)).toEqual([true, true, false, false, false]);
    expect(activeCount(list)).toBe(2);
    expect(activeCount(undefined)).toBe(0);
    expect(activeCount([])).toBe(0);
  });
});

describe('taskPercent', () => {
  it('follows progress, rounded down so 100 means done', () => {
    expect(taskPercent(task({ progress: 0.25 }))).toBe(25);
    expect(taskPercent(task({ progress: 0.999 }))).toBe(99);
    expect(taskPercent(task({ status: 'succeeded', progress: 1 }))).toBe(100);
  });
  it('is indeterminate while a running task has measured nothing yet', () => {
    expect(taskPercent(task({ progress: 0, bytesDone: 0, bytesTotal: null }))).toBeUndefined();
    expect(taskPercent(task({ status: 'queued', progress: 0, bytesDone: 0, bytesTotal: null }))).toBe(0);
  });
  it('falls back to bytes when only they are reported', () => {
    expect(taskPercent(task({ progress: 0, bytesDone: 512 * MiB, bytesTotal: 1024 * MiB }))).toBe(50);
  });
  it('a failed task stays where it stopped', () => {
    expect(taskPercent(task({ status: 'failed', progress: 0.4 }))).toBe(40);
  });
});

describe('bytesLabel', () => {
  it('says how much of how much', () => {
    expect(bytesLabel(task({ bytesDone: 256 * MiB, bytesTotal: 1024 * MiB }))).toBe('256 MiB of 1 GiB');
    expect(bytesLabel(task({ bytesDone: 12 * MiB, bytesTotal: null }))).toBe('12 MiB so far');
    expect(bytesLabel(task({ bytesDone: 0, bytesTotal: null }))).toBeNull();
    expect(bytesLabel(task({ bytesDone: 0, bytesTotal: 0 }))).toBeNull();
  });
});

describe('describeTarget', () => {
  const d = disk();
  const v = vm();
  it('names the VM and disk from the loaded lists, with links', () => {
    const parts = describeTarget(task({ target: { vm: v.id, disk: d.id } }), [v], [d]);
    expect(parts).toEqual([
      { kind: 'vm', id: v.id, label: 'Machine alpha', href: `/vms/${v.id}` },
      { kind: 'disk', id: d.id, label: 'Disk alpha-disk', href: '/disks' },
    ]);
  });
  it('says "deleted" (and links nowhere) once a loaded list no longer has it', () => {
    const parts = describeTarget(task({ target: { vm: null, disk: d.id } }), [], []);
    expect(parts).toEqual([{ kind: 'disk', id: d.id, label: 'Disk 22222222 (deleted)', href: null }]);
  });
  it('shows a short id while the lists are still loading', () => {
    const parts = describeTarget(task({ target: { vm: v.id, disk: null } }), undefined, undefined);
    expect(parts).toEqual([{ kind: 'vm', id: v.id, label: 'Machine 11111111', href: `/vms/${v.id}` }]);
    expect(describeTarget(task({ target: { vm: null, disk: null } }), [v], [d])).toEqual([]);
  });
});

describe('timeLabel', () => {
  const now = Date.parse('2025-11-28T14:10:00.000Z');
  it('says when it was queued while it waits', () => {
    expect(timeLabel(task({ createdAt: '2025-11-28T14:09:30.000Z', startedAt: null }), now)).toBe('Queued just now');
  });
  it('says when it started, ended and how long it took', () => {
    expect(timeLabel(task({ startedAt: '2025-11-28T14:05:00.000Z', endedAt: null }), now)).toBe('Started 5 min ago');
    expect(timeLabel(task({ startedAt: '2025-11-28T14:05:00.000Z', endedAt: '2025-11-28T14:07:00.000Z' }), now)).toBe('Started 5 min ago · ended 3 min ago · took 2 min');
    // Cancelled before it started: measured from when it was queued.
    expect(timeLabel(task({ createdAt: '2025-11-28T14:08:00.000Z', startedAt: null, endedAt: '2025-11-28T14:08:30.000Z' }), now)).toBe('Queued 2 min ago · ended 1 min ago · took 30 s');
  });
});

describe('activeTaskFor', () => {
  it('finds the newest waiting or running task of a disk or VM', () => {
    const d = '22222222-2222-4222-8222-222222222222';
    const list = [
      task({ id: 'a', status: 'succeeded', target: { vm: null, disk: d } }),
      task({ id: 'b', status: 'running', target: { vm: null, disk: d } }),
      task({ id: 'c', status: 'running', target: { vm: 'vm-1', disk: null } }),
    ];
    expect(activeTaskFor(list, { disk: d })?.id).toBe('b');
    expect(activeTaskFor(list, { vm: 'vm-1' })?.id).toBe('c');
    expect(activeTaskFor(list, { disk: 'other' })).toBeUndefined();
    expect(activeTaskFor(undefined, { disk: d })).toBeUndefined();
  });
});
