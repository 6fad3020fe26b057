import type { CreateVmBody, Task, Vm } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';
import { refuseBase } from '../disks/chain.js';
import { checkResources, emitVm, requireAllowed, requireVm, type VmContext } from './context.js';
import type { CloneService } from './clone.js';
import { hardwareChange, hardwareOf, mergeHardware, refuseLayout } from './hardware.js';
import type { VmRecord } from './repo.js';
import { checkCloudInitBody } from './cloud-init.js';

/**
 * Templates (issue 12). A template is a stopped VM whose disks are read-only bases: it cannot
 * start, and its disks cannot be written, attached, detached, resized, snapshotted or reverted
 * (409 VM_IS_TEMPLATE). New VMs are linked clones of it: each disk a qcow2 overlay backing onto
 * the template's disk (recorded in the chain table, so the base is never deleted or written while
 * a clone needs it), with a MAC and a VNC port of their own.
 */
export function refuseTemplate(vm: Pick<VmRecord, 'name' | 'template'>, what: string): void {
  if (!vm.template) return;
  throw new AppError(
    'VM_IS_TEMPLATE',
    `VM ${vm.name} is a template: its disks are read-only bases, it cannot be ${what} (create a VM from it with POST /api/vms { "template": id }, or turn it back into a VM with DELETE /api/vms/{id}/template)`,
  );
}

export class TemplateService {
  constructor(
    private readonly ctx: VmContext,
    private readonly clones: CloneService,
  ) {}

  /**
   * Makes a stopped VM a template. Every disk must be a managed, ready disk (a linked clone backs
   * onto managed disks only); a VM with no disk is refused, there would be nothing to base on.
   */
  make(id: string): Vm {
    const { ctx } = this;
    const release = ctx.locks.acquire(id, 'configure');
    try {
      const vm = requireVm(ctx, id);
      requireAllowed(vm, 'configure', (status) => `Cannot make VM ${vm.name} a template while it is ${status}; stop it first`);
      if (vm.template) return emitVm(ctx, id);
      if (vm.disks.length === 0) throw new AppError('VALIDATION', `VM ${vm.name} has no disk: a template is the base of its clones' disks`);
      for (const d of vm.disks) {
        const managed = ctx.disks.byPath(d.path);
        if (!managed) {
          throw new AppError('IMAGE_NOT_ALLOWED', `${d.path} is not a managed disk: a template's disks are the bases of linked clones, which back onto managed disks only`);
        }
        if (managed.status !== 'ready') throw new AppError('DISK_NOT_READY', `Disk ${managed.name} is ${managed.status}, not ready`);
      }
      ctx.repo.update(id, { is_template: 1 });
      return emitVm(ctx, id);
    } finally {
      release();
    }
  }

  /** Turns a template back into a VM, once no linked clone backs onto its disks (409 DISK_HAS_CHILDREN). */
  unmake(id: string): Vm {
    const { ctx } = this;
    const release = ctx.locks.acquire(id, 'configure');
    try {
      const vm = requireVm(ctx, id);
      if (!vm.template) return emitVm(ctx, id);
      for (const d of vm.disks) {
        const managed = ctx.disks.byPath(d.path);
        if (managed) refuseBase(ctx.disks, managed, 'written again');
      }
      ctx.repo.update(id, { is_template: 0 });
      return emitVm(ctx, id);
    } finally {
      release();
    }
  }

  /**
   * `POST /api/vms { name, template }`: a task (vm.create) that makes a linked clone of the
   * template: CPUs and memory the body's or the template's, the template's hardware with the
   * body's fields over it (no OS preset is applied: the template is the preset), the template's CD
   * medium, a new MAC and VNC port; not a template itself. `linkedDisk: false` makes full copies.
   */
  async create(body: CreateVmBody): Promise<{ task: Task }> {
    const { ctx } = this;
    const templateId = body.template!;
    if (body.image !== undefined) throw new AppError('VALIDATION', 'Give either "image" or "template", not both');
    if (body.diskSize !== undefined) throw new AppError('VALIDATION', '"diskSize" goes with "image": a VM from a template gets disks of the template\'s sizes');
    if (body.cloudInit !== undefined) checkCloudInitBody(body.cloudInit); // applied over the template's config
    if (body.name.length > 57) throw new AppError('VALIDATION', 'body.name must be at most 57 characters from a template: its disks are named <name>-disk<N>');
    const tpl = requireVm(ctx, templateId);
    if (!tpl.template) throw new AppError('VALIDATION', `VM ${tpl.name} is not a template: make it one (POST /api/vms/${tpl.id}/template), or clone it`);
    const cpus = body.cpus ?? tpl.cpus;
    const memory = body.memory ?? tpl.memory;
    checkResources(ctx, { cpus, memory });
    const change = hardwareChange(ctx, body);
    const hardware = mergeHardware(hardwareOf(tpl), change);
    refuseLayout(tpl, hardware);
    return this.clones.cloneVm(
      templateId,
      { name: body.name, mode: body.linkedDisk === false ? 'full' : 'linked' },
      { kind: 'vm.create', cpus, memory, hardware, ...(body.cloudInit !== undefined ? { cloudInit: body.cloudInit } : {}) },
    );
  }
}
