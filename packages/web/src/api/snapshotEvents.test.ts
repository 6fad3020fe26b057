import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import { applyServerEvent } from './events';
import { qk } from './queries';
import { task } from '../test/fixtures';

const VM = '11111111-1111-4111-8111-111111111111';

describe('snapshot lists follow their tasks', () => {
  it('marks a VM’s snapshot list stale when one of its snapshot tasks ends, not before, not for others', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.snapshots(VM), []);
    const stale = () => qc.getQueryState(qk.snapshots(VM))?.isInvalidated ?? false;
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'vm.snapshot', status: 'running', target: { vm: VM, disk: null } }) });
    expect(stale()).toBe(false);
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'disk.resize', status: 'succeeded', target: { vm: VM, disk: null } }) });
    expect(stale()).toBe(false);
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'vm.revert', status: 'succeeded', target: { vm: 'other', disk: null } }) });
    expect(stale()).toBe(false);
    applyServerEvent(qc, { type: 'task.updated', task: task({ kind: 'vm.snapshot.delete', status: 'failed', target: { vm: VM, disk: null } }) });
    expect(stale()).toBe(true);
  });
});
