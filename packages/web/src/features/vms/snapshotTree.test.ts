import { describe, expect, it } from 'vitest';
import type { Snapshot } from '@qemu-manager/contract';
import { buildSnapshotTree, canIncludeMemory, cloneVmNameError, flattenTree, revertBlockedReason, snapshotNameError, suggestSnapshotName } from './snapshotTree';
import { t } from '../../i18n';

const snap = (name: string, parent: string | null, minute: number, over: Partial<Snapshot> = {}): Snapshot => ({
  name,
  description: '',
  createdAt: `2025-11-28T14:${String(minute).padStart(2, '0')}:00.000Z`,
  vmState: false,
  parent,
  current: false,
  sizeBytes: 0,
  disks: ['/data/disks/a.qcow2'],
  ...over,
});

const shape = (rows: { snapshot: Snapshot; depth: number }[]) => rows.map((r) => `${'  '.repeat(r.depth)}${r.snapshot.name}`);

describe('buildSnapshotTree', () => {
  it('nests through parent, oldest first at every level, whatever the input order', () => {
    const list = [snap('c', 'a', 3), snap('b2', 'b', 5), snap('a', null, 1), snap('b', 'a', 2), snap('b1', 'b', 4), snap('other', null, 0)];
    expect(shape(flattenTree(buildSnapshotTree(list)))).toEqual(['other', 'a', '  b', '    b1', '    b2', '  c']);
  });
  it('makes a snapshot whose parent is unknown a root, so none is lost', () => {
    const rows = flattenTree(buildSnapshotTree([snap('x', 'deleted-long-ago', 1), snap('y', 'x', 2)]));
    expect(shape(rows)).toEqual(['x', '  y']);
  });
  it('survives a loop or a self parent without dropping or repeating anything', () => {
    const rows = flattenTree(buildSnapshotTree([snap('p', 'q', 1), snap('q', 'p', 2), snap('s', 's', 3)]));
    expect(rows.map((r) => r.snapshot.name).sort()).toEqual(['p', 'q', 's']);
  });
  it('keeps the current flag on the node', () => {
    const rows = flattenTree(buildSnapshotTree([snap('a', null, 1), snap('b', 'a', 2, { current: true })]));
    expect(rows.find((r) => r.snapshot.current)?.snapshot.name).toBe('b');
    expect(rows.find((r) => r.snapshot.current)?.depth).toBe(1);
  });
  it('is empty for no snapshots', () => {
    expect(buildSnapshotTree([])).toEqual([]);
  });
});

describe('Take snapshot dialog checks', () => {
  it('follows the VM name rule, refuses digits only and a name in use', () => {
    expect(snapshotNameError('before-upgrade', [])).toBeNull();
    expect(snapshotNameError('1', [])).toBe(t.storage.snapshotNameInvalid);
    expect(snapshotNameError('', [])).toBe(t.storage.snapshotNameInvalid);
    expect(snapshotNameError('has space', [])).toBe(t.storage.snapshotNameInvalid);
    expect(snapshotNameError('x'.repeat(64), [])).toBe(t.storage.snapshotNameInvalid);
    expect(snapshotNameError('snap1', [snap('snap1', null, 1)])).toBe(t.storage.snapshotNameTaken);
    expect(suggestSnapshotName([snap('snap1', null, 1), snap('snap2', null, 2)])).toBe('snap3');
  });
  it('offers memory only when the machine runs', () => {
    expect(canIncludeMemory('running')).toBe(true);
    expect(canIncludeMemory('paused')).toBe(true);
    expect(canIncludeMemory('stopped')).toBe(false);
    expect(canIncludeMemory('starting')).toBe(false);
  });
  it('explains that a disk-only snapshot of a running machine needs a stop first', () => {
    expect(revertBlockedReason({ vmState: false }, 'stopped')).toBeNull();
    expect(revertBlockedReason({ vmState: true }, 'running')).toBeNull();
    expect(revertBlockedReason({ vmState: false }, 'running')).toBe(t.storage.revertRunningDiskOnly);
  });
});

describe('Clone VM dialog checks', () => {
  it('allows at most 57 characters (its disks are <name>-diskN) and no name in use', () => {
    expect(cloneVmNameError('web-clone', [{ name: 'web' }])).toBeNull();
    expect(cloneVmNameError('x'.repeat(57), [])).toBeNull();
    expect(cloneVmNameError('x'.repeat(58), [])).toBe(t.storage.cloneVmNameInvalid);
    expect(cloneVmNameError('web', [{ name: 'web' }])).toBe(t.storage.cloneVmNameTaken);
    expect(cloneVmNameError('-x', [])).toBe(t.storage.cloneVmNameInvalid);
  });
});
