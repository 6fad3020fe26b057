import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import type { Disk, Task, Vm } from '@qemu-manager/contract';
import { applyServerEvent, parseServerEvent } from './events';
import { addCreatedDisk, qk, TASK_PANEL_LIMIT } from './queries';
import { disk, task, vm } from '../test/fixtures';

describe('applyServerEvent', () => {
  it('upserts and removes VMs in the list and detail caches', () => {
    const qc = new QueryClient();
    const a = vm();
    qc.setQueryData(qk.vms, [a]);
    applyServerEvent(qc, { type: 'vm.updated', vm: { ...a, status: 'running' } });
    expect(qc.getQueryData<Vm[]>(qk.vms)?.[0]?.status).toBe('running');
    expect(qc.getQueryData<Vm>(qk.vm(a.id))?.status).toBe('running');

    const b = vm({ id: '33333333-3333-4333-8333-333333333333', name: 'beta' });
    applyServerEvent(qc, { type: 'vm.created', vm: b });
    expect(qc.getQueryData<Vm[]>(qk.vms)?.map((v) => v.name)).toEqual(['alpha', 'beta']);

    applyServerEvent(qc, { type: 'vm.deleted', id: a.id });
    expect(qc.getQueryData<Vm[]>(qk.vms)?.map((v) => v.name)).toEqual(['beta']);
    expect(qc.getQueryData(qk.vm(a.id))).toBeUndefined();
  });

  it('does not invent a list that was never loaded', () => {
    const qc = new QueryClient();
    applyServerEvent(qc, { type: 'vm.created', vm: vm() });
    expect(qc.getQueryData(qk.vms)).toBeUndefined();
  });

  it('keeps disk info when an update carries none', () => {
    const qc = new QueryClient();
    const info = { 'virtual-size': 10, filename: 'f', format: 'qcow2', 'actual-size': 5 };
    qc.setQueryData<Disk[]>(qk.disks, [disk({ status: 'creating', info })]);
    applyServerEvent(qc, { type: 'disk.updated', disk: disk({ status: 'ready' }) });
    const d = qc.getQueryData<Disk[]>(qk.disks)?.[0];
    expect(d?.status).toBe('ready');
    expect(d?.info).toEqual(info);
    applyServerEvent(qc, { type: 'disk.deleted', id: d!.id });
    expect(qc.getQueryData<Disk[]>(qk.disks)).toEqual([]);
  });

  it('marks the ISO list stale on iso.changed', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.isos, []);
    applyServerEvent(qc, { type: 'iso.changed' });
    expect(qc.getQueryState(qk.isos)?.isInvalidated).toBe(true);
  });
});

describe('parseServerEvent', () => {
  it('parses known types and ignores junk', () => {
    expect(parseServerEvent('vm.deleted', '{"type":"vm.deleted","id":"x"}')).toEqual({ type: 'vm.deleted', id: 'x' });
    expect(parseServerEvent('iso.changed', '{}')).toEqual({ type: 'iso.changed' });
    expect(parseServerEvent('vm.deleted', 'not json')).toBeNull();
    expect(parseServerEvent('something.else', '{}')).toBeNull();
    expect(parseServerEvent('vm.updated', 'null')).toBeNull();
  });
});

describe('task events', () => {
  const D = '22222222-2222-4222-8222-222222222222';
  const V = '11111111-1111-4111-8111-111111111111';

  it('put a new task at the top of every loaded list it belongs in, and only those', () => {
    const qc = new QueryClient();
    const old = task({ id: 'old', status: 'succeeded', target: { vm: V, disk: null } });
    qc.setQueryData(qk.taskList({ limit: TASK_PANEL_LIMIT }), [old]);
    qc.setQueryData(qk.taskList({ disk: D, limit: 8 }), []);
    qc.setQueryData(qk.taskList({ vm: V, limit: 8 }), [old]);
    const fresh = task({ id: 'new', status: 'queued', progress: 0, target: { vm: null, disk: D } });
    applyServerEvent(qc, { type: 'task.created', task: fresh });
    expect(qc.getQueryData<Task[]>(qk.taskList({ limit: TASK_PANEL_LIMIT }))?.map((x) => x.id)).toEqual(['new', 'old']);
    expect(qc.getQueryData<Task[]>(qk.taskList({ disk: D, limit: 8 }))?.map((x) => x.id)).toEqual(['new']);
    expect(qc.getQueryData<Task[]>(qk.taskList({ vm: V, limit: 8 }))?.map((x) => x.id)).toEqual(['old']);
    // A list never loaded stays unloaded.
    expect(qc.getQueryData(qk.taskList({ disk: 'other' }))).toBeUndefined();
  });

  it('replace the task in place as it progresses and ends, without a refetch', () => {
    const qc = new QueryClient();
    const a = task({ id: 'a', status: 'running', progress: 0.1 });
    const b = task({ id: 'b', status: 'succeeded', progress: 1 });
    qc.setQueryData(qk.taskList({ limit: TASK_PANEL_LIMIT }), [a, b]);
    applyServerEvent(qc, { type: 'task.updated', task: { ...a, progress: 0.6, bytesDone: 600 } });
    let list = qc.getQueryData<Task[]>(qk.taskList({ limit: TASK_PANEL_LIMIT }));
    expect(list?.map((x) => [x.id, x.progress])).toEqual([['a', 0.6], ['b', 1]]);
    applyServerEvent(qc, { type: 'task.updated', task: { ...a, status: 'succeeded', progress: 1, endedAt: '2025-11-28T14:01:00.000Z' } });
    list = qc.getQueryData<Task[]>(qk.taskList({ limit: TASK_PANEL_LIMIT }));
    expect(list?.map((x) => [x.id, x.status])).toEqual([['a', 'succeeded'], ['b', 'succeeded']]);
    expect(qc.getQueryState(qk.taskList({ limit: TASK_PANEL_LIMIT }))?.isInvalidated).toBe(false);
  });

  it('keep a list to its limit', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.taskList({ disk: D, limit: 2 }), [task({ id: 'x' }), task({ id: 'y' })]);
    applyServerEvent(qc, { type: 'task.created', task: task({ id: 'z' }) });
    expect(qc.getQueryData<Task[]>(qk.taskList({ disk: D, limit: 2 }))?.map((x) => x.id)).toEqual(['z', 'x']);
  });
});

describe('addCreatedDisk', () => {
  it('never turns a disk that an event already made ready back into "creating"', () => {
    const qc = new QueryClient();
    const d = disk({ status: 'creating', createdAtCompleted: null });
    qc.setQueryData(qk.disks, []);
    // The server's events can beat the create answer: created, then ready.
    applyServerEvent(qc, { type: 'disk.created', disk: d });
    applyServerEvent(qc, { type: 'disk.updated', disk: { ...d, status: 'ready' } });
    addCreatedDisk(qc, d);
    expect(qc.getQueryData<Disk[]>(qk.disks)?.map((x) => x.status)).toEqual(['ready']);
  });
  it('adds the disk when the answer comes first', () => {
    const qc = new QueryClient();
    qc.setQueryData(qk.disks, []);
    addCreatedDisk(qc, disk({ status: 'creating' }));
    expect(qc.getQueryData<Disk[]>(qk.disks)?.map((x) => x.status)).toEqual(['creating']);
  });
});
