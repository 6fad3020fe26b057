import { vmStateAnswer, type HostTotals, type Vm, type VmAction, type VmStatus } from '@qemu-manager/contract';
import type { Config } from '../config.js';
import type { DiskRepo } from '../disks/repo.js';
import type { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { StorageRoots } from '../lib/storage.js';
import type { VmRuntime } from '../runtime/port.js';
import type { OpLocks } from './locks.js';
import type { VmRecord, VmRepo } from './repo.js';

/** What the VM services share. Built once in app.ts. */
export interface VmContext {
  repo: VmRepo;
  disks: DiskRepo;
  storage: StorageRoots;
  runtime: VmRuntime;
  bus: EventBus;
  locks: OpLocks;
  config: Config;
  accel: 'kvm' | 'tcg';
  limits: { cpus: number; memoryMiB: number };
  log: Logger;
}

export function requireVm(ctx: VmContext, id: string): VmRecord {
  const vm = ctx.repo.get(id);
  if (!vm) throw new AppError('VM_NOT_FOUND', `VM not found: ${id}`);
  return vm;
}

/** The public shape of a VM (drops server-only fields). */
export function publicVm(vm: VmRecord): Vm {
  const { pidStart: _pidStart, ...rest } = vm;
  return rest;
}

/** Reads the VM again, tells subscribers, and returns its public shape. */
export function emitVm(ctx: VmContext, id: string): Vm {
  const vm = publicVm(requireVm(ctx, id));
  ctx.bus.publish({ type: 'vm.updated', vm });
  return vm;
}

export function emitDiskByPath(ctx: VmContext, path: string): void {
  const disk = ctx.disks.byPath(path);
  if (disk) ctx.bus.publish({ type: 'disk.updated', disk });
}

/**
 * The bound on the memory of all defined VMs together, in MiB: MAX_VM_MEMORY_TOTAL and
 * MEMORY_OVERCOMMIT × host memory, the smaller of those set; null when neither is.
 */
export function memoryTotalLimitMiB(config: Pick<Config, 'totals'>, hostMemoryMiB: number): number | null {
  const { maxVmMemoryMiB, memoryOvercommit } = config.totals;
  const bounds = [maxVmMemoryMiB, memoryOvercommit === null ? null : Math.floor(memoryOvercommit * hostMemoryMiB)];
  const set = bounds.filter((b): b is number => b !== null);
  return set.length ? Math.min(...set) : null;
}

/** Memory declared by all defined VMs (MiB), optionally leaving one out. */
export function declaredMemoryMiB(ctx: Pick<VmContext, 'repo'>, except?: string): number {
  return ctx.repo.memoryTotal(except);
}

/** The host-wide memory totals GET /api/health reports. */
export function memoryTotals(ctx: Pick<VmContext, 'repo' | 'config' | 'limits'>): HostTotals {
  return {
    vmMemoryDeclaredMiB: declaredMemoryMiB(ctx),
    vmMemoryTotalMiB: memoryTotalLimitMiB(ctx.config, ctx.limits.memoryMiB),
    maxVmMemoryTotalMiB: ctx.config.totals.maxVmMemoryMiB,
    memoryOvercommit: ctx.config.totals.memoryOvercommit,
  };
}

/**
 * Per-VM bounds (400: the value can never fit this host) and the optional host-wide memory total
 * (409: it does not fit next to the VMs defined now). `vmId` is the VM being changed, if any.
 */
export function checkResources(ctx: VmContext, r: { cpus?: number; memory?: number }, vmId?: string): void {
  if (r.cpus !== undefined && r.cpus > ctx.limits.cpus) {
    throw new AppError('VALIDATION', `cpus must be at most ${ctx.limits.cpus} (the host's logical CPUs)`);
  }
  if (r.memory !== undefined && r.memory > ctx.limits.memoryMiB) {
    throw new AppError('VALIDATION', `memory must be at most ${ctx.limits.memoryMiB} MiB (the host's memory)`);
  }
  const limit = memoryTotalLimitMiB(ctx.config, ctx.limits.memoryMiB);
  if (limit !== null && r.memory !== undefined) {
    const others = declaredMemoryMiB(ctx, vmId);
    if (others + r.memory > limit) {
      throw new AppError('LIMIT_EXCEEDED',
        `The VMs would declare ${others + r.memory} MiB of memory in total; the host-wide limit is ${limit} MiB (${others} MiB is declared by the other VMs)`,
      );
    }
  }
}

/**
 * Refuses `action` with the 409 the VM state table gives for the VM's status (VM_NOT_STOPPED,
 * VM_NOT_RUNNING or VM_BUSY). `message` words the refusal; by default it names the status.
 */
export function requireAllowed(vm: Pick<VmRecord, 'status'>, action: VmAction, message?: (status: VmStatus) => string): void {
  const answer = vmStateAnswer(vm.status, action);
  if (answer === true) return;
  const words =
    message?.(vm.status) ??
    (answer === 'VM_NOT_STOPPED'
      ? `Cannot ${action} while the VM is ${vm.status}; stop it first`
      : answer === 'VM_NOT_RUNNING'
        ? 'VM is not running'
        : `VM is ${vm.status}; try again in a moment`);
  throw new AppError(answer, words);
}
