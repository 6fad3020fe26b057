import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import type { Backup } from '@qemu-manager/contract';
import { applyServerEvent } from './events';
import { qk } from './queries';
import { task } from '../test/fixtures';

const VM = '11111111-1111-4111-8111-111111111111';
const B1 = '55555555-5555-4555-8555-555555555555';
const B2 = '66666666-6666-4666-8666-666666666666';
const b = (id: string): Backup => ({
  id, vm: VM, vmName: 'alpha', target: 'default', createdAt: '2025-11-28T14:00:00.000Z', kind: 'full', parent: null,
  sizeBytes: 1, verifiedAt: null, state: 'ok', frozen: false, disks: [],
});

describe('backup lists follow backup events and backup tasks', () => {
  it('backup.created marks every backup list and the targets stale', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.backupList({ vm: VM }), []);
    qc.setQueryData(qk.backupList(), []);
    qc.setQueryData(qk.backupTargets, []);
    applyServerEvent(qc, { type: 'backup.created', backup: b(B1) });
    expect(qc.getQueryState(qk.backupList({ vm: VM }))?.isInvalidated).toBe(true);
    expect(qc.getQueryState(qk.backupList())?.isInvalidated).toBe(true);
    expect(qc.getQueryState(qk.backupTargets)?.isInvalidated).toBe(true);
  });

  it('backup.deleted takes it out of every list at once', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.backupList({ vm: VM }), [b(B1), b(B2)]);
    qc.setQueryData(qk.backupList({ target: 'default' }), [b(B1)]);
    applyServerEvent(qc, { type: 'backup.deleted', id: B1 });
    expect(qc.getQueryData<Backup[]>(qk.backupList({ vm: VM }))?.map((x) => x.id)).toEqual([B2]);
    expect(qc.getQueryData<Backup[]>(qk.backupList({ target: 'default' }))).toEqual([]);
  });

  it('backup.failed is kept for the VM, and a scheduled one marks the schedules stale', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.backupSchedules, []);
    applyServerEvent(qc, { type: 'backup.failed', vm: VM, vmName: 'alpha', task: 't1', error: 'No space left', schedule: null });
    expect(qc.getQueryData<{ error: string; task: string }>(qk.backupFailure(VM))).toMatchObject({ error: 'No space left', task: 't1' });
    expect(qc.getQueryState(qk.backupSchedules)?.isInvalidated).toBe(false);
    applyServerEvent(qc, { type: 'backup.failed', vm: VM, vmName: 'alpha', task: 't2', error: 'x', schedule: 's1' });
    expect(qc.getQueryState(qk.backupSchedules)?.isInvalidated).toBe(true);
  });

  it('a backup task that ends (a verify) reloads the lists; one still running does not', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.backupList(), [b(B1)]);
    qc.setQueryData(qk.backupSchedules, []);
    const stale = () => qc.getQueryState(qk.backupList())?.isInvalidated ?? false;
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'backup.verify', status: 'running' }) });
    expect(stale()).toBe(false);
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'disk.resize', status: 'succeeded' }) });
    expect(stale()).toBe(false);
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'backup.verify', status: 'succeeded' }) });
    expect(stale()).toBe(true);
    expect(qc.getQueryState(qk.backupSchedules)?.isInvalidated).toBe(false);
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'backup.schedule', status: 'failed' }) });
    expect(qc.getQueryState(qk.backupSchedules)?.isInvalidated).toBe(true);
  });
});
