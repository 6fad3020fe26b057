import { describe, expect, it, vi } from 'vitest';
import type { Disk, ServerEvent } from '@qemu-manager/contract';
import { ApiError } from '../../api/client';
import { disk, vm } from '../../test/fixtures';
import { planSteps, runCreateVm, waitForDiskReady, type FlowDeps } from './createVmFlow';

const plan = {
  vm: { name: 'e2e-guest', cpus: 1, memory: 256 },
  disk: { name: 'e2e-guest-disk', size: 1, format: 'qcow2' as const },
  isoPath: '/data/isos/testguest.iso',
};

function deps(over: Partial<FlowDeps> = {}): FlowDeps {
  return {
    createVm: vi.fn(async (b) => vm({ name: b.name })),
    createDisk: vi.fn(async () => disk({ status: 'creating' })),
    waitForDisk: vi.fn(async (d: Disk) => ({ ...d, status: 'ready' as const })),
    attachDisk: vi.fn(async (_id, p) => vm({ disks: [{ path: p, attachedAt: 'x', diskId: 'd' }] })),
    mountIso: vi.fn(async (_id, p) => vm({ iso: p })),
    ...over,
  };
}

describe('planSteps', () => {
  it('only plans what was asked for', () => {
    expect(planSteps({ vm: plan.vm }).map((s) => s.id)).toEqual(['createVm']);
    expect(planSteps(plan).map((s) => s.id)).toEqual(['createVm', 'createDisk', 'waitDisk', 'attachDisk', 'mountIso']);
  });
});

describe('runCreateVm', () => {
  it('runs every step in order and reports progress', async () => {
    const d = deps();
    const seen: string[] = [];
    const res = await runCreateVm(plan, d, (steps) => seen.push(steps.map((s) => s.status[0]).join('')));
    expect(res.ok).toBe(true);
    expect(res.vm?.iso).toBe(plan.isoPath);
    expect(d.attachDisk).toHaveBeenCalledWith(expect.any(String), '/data/disks/alpha-disk.qcow2');
    expect(seen[0]).toBe('rpppp');
    expect(seen.at(-1)).toBe('ddddd');
  });

  it('stops everything when the VM cannot be created, with the server message', async () => {
    const d = deps({ createVm: vi.fn(async () => { throw new ApiError(409, 'NAME_TAKEN', 'Name already used'); }) });
    const res = await runCreateVm(plan, d, () => {});
    expect(res.ok).toBe(false);
    expect(res.vm).toBeNull();
    expect(res.steps[0]).toEqual({ id: 'createVm', status: 'failed', error: 'Name already used' });
    expect(res.steps.slice(1).every((s) => s.status === 'skipped')).toBe(true);
    expect(d.createDisk).not.toHaveBeenCalled();
  });

  it('still inserts the ISO when the disk fails', async () => {
    const d = deps({ waitForDisk: vi.fn(async () => { throw new Error('qemu-img: no space'); }) });
    const res = await runCreateVm(plan, d, () => {});
    expect(res.ok).toBe(false);
    expect(res.steps.map((s) => s.status)).toEqual(['done', 'done', 'failed', 'skipped', 'done']);
    expect(res.steps[2]?.error).toBe('qemu-img: no space');
    expect(res.vm?.iso).toBe(plan.isoPath);
  });

  it('skips wait and attach when the disk cannot be created', async () => {
    const d = deps({ createDisk: vi.fn(async () => { throw new ApiError(409, 'NAME_TAKEN', 'Disk exists'); }) });
    const res = await runCreateVm(plan, d, () => {});
    expect(res.steps.map((s) => s.status)).toEqual(['done', 'failed', 'skipped', 'skipped', 'done']);
  });
});

describe('waitForDiskReady', () => {
  function bus() {
    const ls = new Set<(e: ServerEvent) => void>();
    return {
      subscribe: (l: (e: ServerEvent) => void) => (ls.add(l), () => ls.delete(l)),
      emit: (e: ServerEvent) => ls.forEach((l) => l(e)),
      size: () => ls.size,
    };
  }
  it('resolves at once for a ready disk', async () => {
    const b = bus();
    await expect(waitForDiskReady(disk(), { get: vi.fn(), subscribe: b.subscribe })).resolves.toMatchObject({ status: 'ready' });
  });
  it('resolves on the disk.updated event and unsubscribes', async () => {
    const b = bus();
    const d = disk({ status: 'creating' });
    const p = waitForDiskReady(d, { get: vi.fn(() => new Promise<Disk>(() => {})), subscribe: b.subscribe, pollMs: 10_000 });
    b.emit({ type: 'disk.updated', disk: disk({ id: 'other', status: 'ready' }) });
    b.emit({ type: 'disk.updated', disk: { ...d, status: 'ready' } });
    await expect(p).resolves.toMatchObject({ id: d.id, status: 'ready' });
    expect(b.size()).toBe(0);
  });
  it('falls back to polling', async () => {
    const b = bus();
    const d = disk({ status: 'creating' });
    const get = vi.fn(async () => ({ ...d, status: 'ready' as const }));
    await expect(waitForDiskReady(d, { get, subscribe: b.subscribe, pollMs: 5 })).resolves.toMatchObject({ status: 'ready' });
  });
  it('rejects with the disk error', async () => {
    const b = bus();
    const d = disk({ status: 'creating' });
    const p = waitForDiskReady(d, { get: vi.fn(() => new Promise<Disk>(() => {})), subscribe: b.subscribe, pollMs: 10_000 });
    b.emit({ type: 'disk.updated', disk: { ...d, status: 'error', error: 'qemu-img failed' } });
    await expect(p).rejects.toThrow('qemu-img failed');
  });
  it('times out', async () => {
    const b = bus();
    const p = waitForDiskReady(disk({ status: 'creating' }), {
      get: vi.fn(() => new Promise<Disk>(() => {})), subscribe: b.subscribe, pollMs: 10_000, timeoutMs: 10,
    });
    await expect(p).rejects.toThrow(/too long/);
  });
});
