import type { Vm } from '@qemu-manager/contract';
import type { Config } from '../config.js';
import type { DiskRepo } from '../disks/repo.js';
import type { QemuImg } from '../disks/qemu-img.js';
import type { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import type { StorageRoots } from '../lib/storage.js';
import type { Logger, Supervisor } from '../qemu/supervisor.js';
import type { OpLocks } from './locks.js';
import type { VmRecord, VmRepo } from './repo.js';

/** What the VM services share. Built once in app.ts. */
export interface VmContext {
  repo: VmRepo;
  disks: DiskRepo;
  storage: StorageRoots;
  qemuImg: QemuImg;
  supervisor: Supervisor;
  bus: EventBus;
  locks: OpLocks;
  config: Config;
  accel: 'kvm' | 'tcg';
  limits: { cpus: number; memoryMiB: number };
  log: Logger;
}

export function requireVm(ctx: VmContext, id: string): VmRecord {
  const vm = ctx.repo.get(id);
  if (!vm) throw new AppError(404, 'VM_NOT_FOUND', `VM not found: ${id}`);
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

export function checkResources(ctx: VmContext, r: { cpus?: number; memory?: number }): void {
  if (r.cpus !== undefined && r.cpus > ctx.limits.cpus) {
    throw new AppError(400, 'VALIDATION', `cpus must be at most ${ctx.limits.cpus} (the host's logical CPUs)`);
  }
  if (r.memory !== undefined && r.memory > ctx.limits.memoryMiB) {
    throw new AppError(400, 'VALIDATION', `memory must be at most ${ctx.limits.memoryMiB} MiB (the host's memory)`);
  }
}

export function requireStopped(vm: VmRecord, action: string): void {
  if (vm.status !== 'stopped') {
    throw new AppError(409, 'VM_NOT_STOPPED', `Cannot ${action} while the VM is ${vm.status}; stop it first`);
  }
}
