import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  VM_ACTIONS,
  VM_STATE_TABLE,
  VM_STATUSES,
  vmActionAllowed,
  vmActionCuts,
  vmActionOffered,
  vmStateAnswer,
  vmStatusAfter,
  VmStatus,
} from '@qemu-manager/contract';

describe('the VM state table', () => {
  it('lists exactly the statuses of the VmStatus schema', () => {
    for (const s of VM_STATUSES) expect(Value.Check(VmStatus, s)).toBe(true);
    expect(VmStatus.anyOf.map((l) => l.const).sort()).toEqual([...VM_STATUSES].sort());
  });

  it('answers every status × action with true or a 409 code of the contract', () => {
    expect(Object.keys(VM_STATE_TABLE).sort()).toEqual([...VM_ACTIONS].sort());
    for (const a of VM_ACTIONS) {
      expect(Object.keys(VM_STATE_TABLE[a].when).sort()).toEqual([...VM_STATUSES].sort());
      for (const s of VM_STATUSES) {
        const answer = vmStateAnswer(s, a);
        if (answer !== true) {
          expect(['VM_NOT_STOPPED', 'VM_NOT_RUNNING', 'VM_BUSY']).toContain(answer);
          expect(ErrorCodes).toContain(answer);
        }
      }
    }
  });

  it('transitions land in real statuses, and only actions a VM can take are allowed somewhere', () => {
    for (const a of VM_ACTIONS) {
      const rule = VM_STATE_TABLE[a];
      for (const s of rule.through) expect(VM_STATUSES).toContain(s);
      expect(VM_STATUSES.some((s) => vmActionAllowed(s, a))).toBe(true);
      for (const s of VM_STATUSES) {
        const after = vmStatusAfter(s, a);
        if (rule.removes) expect(after).toBeNull();
        else expect(VM_STATUSES).toContain(after);
      }
    }
    // power actions settle where they should
    expect(vmStatusAfter('stopped', 'start')).toBe('running');
    expect(VM_STATE_TABLE.start.through).toEqual(['starting', 'running']);
    expect(vmStatusAfter('running', 'stop')).toBe('stopped');
    expect(vmStatusAfter('running', 'shutdown')).toBe('stopped');
    expect(VM_STATE_TABLE.reboot.through).toEqual(['stopping', 'stopped', 'starting', 'running']);
    expect(vmStatusAfter('running', 'pause')).toBe('paused');
    expect(vmStatusAfter('paused', 'resume')).toBe('running');
    expect(vmStatusAfter('paused', 'reset')).toBe('paused');
    expect(vmStatusAfter('stopped', 'delete')).toBeNull();
  });

  it('keeps the codes the server answers with (v1 behaviour)', () => {
    const row = (a: (typeof VM_ACTIONS)[number]) => VM_STATUSES.map((s) => vmStateAnswer(s, a));
    // statuses in order: stopped, starting, running, paused, stopping
    expect(row('start')).toEqual([true, 'VM_NOT_STOPPED', 'VM_NOT_STOPPED', 'VM_NOT_STOPPED', 'VM_NOT_STOPPED']);
    expect(row('stop')).toEqual(['VM_NOT_RUNNING', true, true, true, true]);
    for (const a of ['shutdown', 'reboot', 'reset'] as const) expect(row(a)).toEqual(['VM_NOT_RUNNING', 'VM_BUSY', true, true, 'VM_BUSY']);
    expect(row('pause')).toEqual(['VM_NOT_RUNNING', 'VM_BUSY', true, 'VM_BUSY', 'VM_BUSY']);
    expect(row('resume')).toEqual(['VM_NOT_RUNNING', 'VM_BUSY', 'VM_BUSY', true, 'VM_BUSY']);
    expect(row('console')).toEqual(['VM_NOT_RUNNING', 'VM_NOT_RUNNING', true, true, 'VM_NOT_RUNNING']);
    for (const a of ['delete', 'configure', 'attachDisk', 'detachDisk'] as const) {
      expect(row(a)).toEqual([true, 'VM_NOT_STOPPED', 'VM_NOT_STOPPED', 'VM_NOT_STOPPED', 'VM_NOT_STOPPED']);
    }
    for (const a of ['mountIso', 'unmountIso'] as const) expect(row(a)).toEqual([true, 'VM_BUSY', true, true, 'VM_BUSY']);
  });

  it('the UI never offers what the server refuses', () => {
    for (const a of VM_ACTIONS) for (const s of VM_STATUSES) if (vmActionOffered(s, a)) expect(vmActionAllowed(s, a)).toBe(true);
  });

  it('only a power-off cuts another action short: a graceful shutdown or a reboot', () => {
    const cutting = VM_ACTIONS.flatMap((a) => VM_ACTIONS.filter((b) => vmActionCuts(a, b)).map((b) => `${a}>${b}`));
    expect(cutting).toEqual(['stop>shutdown', 'stop>reboot']);
    for (const a of VM_ACTIONS) for (const b of VM_STATE_TABLE[a].cuts ?? []) expect(VM_STATE_TABLE[b].locks).toBe(true);
  });
});
