import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import type { Disk, Vm } from '@qemu-manager/contract';
import { applyServerEvent, parseServerEvent } from './events';
import { qk } from './queries';
import { disk, vm } from '../test/fixtures';

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
