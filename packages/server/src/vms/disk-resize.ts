import { refuseTemplate } from './template.js'; // templates (issue 12)
import { TASK_DONE, type Disk, type ResizeDiskBody, type Task } from '@qemu-manager/contract';
import { refuseBase } from '../disks/chain.js';
import { AppError } from '../lib/errors.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskContext, TaskService } from '../tasks/service.js';
import { requireAllowed, requireVm, type VmContext } from './context.js';

const GiB = 1024 ** 3;

/**
 * Growing a managed disk, as a `disk.resize` task. A disk of no VM, or of a stopped one, is resized
 * by the image tool (qemu-img) on the file; a disk of a running or paused VM by the runtime (QMP
 * block_resize), and the guest sees the new size at once. Only growing: a resize that does not grow
 * the disk is refused before anything is touched. While it runs, the disk's VM is locked (no start,
 * stop or second resize comes in between), and the disk takes no second resize.
 */
export class DiskResizeService {
  private readonly resizing = new Set<string>();

  constructor(
    private readonly ctx: VmContext,
    private readonly images: ImageTool,
    private readonly tasks: TaskService,
  ) {}

  resize(diskId: string, body: ResizeDiskBody): Task {
    const { ctx } = this;
    const disk = ctx.disks.get(diskId);
    if (!disk) throw new AppError('DISK_NOT_FOUND', `Disk not found: ${diskId}`);
    if (disk.status === 'creating') throw new AppError('DISK_NOT_READY', `Disk ${disk.name} is still being created; resize it once it is ready`);
    if (disk.status !== 'ready') {
      throw new AppError('DISK_NOT_READY', `Disk ${disk.name} was not created${disk.error ? ` (${disk.error})` : ''}; there is nothing to resize`);
    }
    refuseBase(ctx.disks, disk, 'resized'); // a base of linked clones is never written
    if (disk.format === 'vmdk') {
      throw new AppError('DISK_NOT_RESIZABLE', `Disk ${disk.name} is a vmdk image, which QEMU cannot resize; convert it to qcow2 or raw first`);
    }
    if (body.size <= disk.size) {
      throw new AppError(
        'DISK_CANNOT_SHRINK',
        body.size === disk.size
          ? `Disk ${disk.name} is already ${disk.size} GB; a resize only grows a disk: ask for more than ${disk.size} GB`
          : `Disk ${disk.name} is ${disk.size} GB; a resize only grows a disk (shrinking would cut off whatever the guest keeps at its end): ask for more than ${disk.size} GB`,
      );
    }
    if (this.resizing.has(diskId)) throw new AppError('DISK_IN_USE', `Disk ${disk.name} is being resized already; wait for that task to end`);

    const vmId = disk.attachedTo;
    let unlock = () => {};
    if (vmId) {
      const vm = requireVm(ctx, vmId);
      requireAllowed(vm, 'resizeDisk', (status) => `Cannot resize a disk of VM ${vm.name} while it is ${status}; try again in a moment`);
      refuseTemplate(vm, 'resized'); // templates (issue 12)
      const lock = ctx.locks.hold(vmId, 'resizeDisk');
      unlock = () => lock.release();
    }
    this.resizing.add(diskId);
    let taskId: string | null = null;
    const done = () => {
      unlock();
      this.resizing.delete(diskId);
      stopWatching();
    };
    // A task cancelled while queued never runs: its end is seen on the bus.
    const stopWatching = ctx.bus.subscribe((ev) => {
      if (ev.type === 'task.updated' && ev.task.id === taskId && TASK_DONE.includes(ev.task.status)) done();
    });
    try {
      const task = this.tasks.start('disk.resize', { disk: diskId, ...(vmId ? { vm: vmId } : {}) }, (tctx) =>
        this.run(disk, body.size, tctx).finally(done),
      );
      taskId = task.id;
      return task;
    } catch (err) {
      done();
      throw err;
    }
  }

  private async run(disk: Disk, sizeGb: number, task: TaskContext): Promise<Record<string, unknown>> {
    const { ctx } = this;
    const bytes = sizeGb * GiB;
    const vmId = disk.attachedTo;
    // Decided when the work starts: the VM's lock keeps it from starting or stopping meanwhile.
    const live = vmId !== null && ctx.runtime.process(vmId) !== null;
    task.progress(0, bytes);
    if (live) {
      const vm = requireVm(ctx, vmId);
      // The runtime numbers a VM's disks in the order it was started with; disks change only while stopped.
      const index = vm.disks.findIndex((d) => d.path === disk.path);
      if (index < 0) throw new AppError('DISK_NOT_ATTACHED', `Disk ${disk.name} is no longer attached to VM ${vm.name}`);
      await ctx.runtime.resizeDisk(vm.id, index, bytes);
    } else {
      await this.images.resize(disk.path, disk.format, sizeGb, task.signal);
    }
    task.progress(bytes, bytes);
    ctx.disks.setSize(disk.id, sizeGb);
    const updated = ctx.disks.get(disk.id);
    if (updated) ctx.bus.publish({ type: 'disk.updated', disk: updated });
    ctx.log.info({ diskId: disk.id, from: disk.size, to: sizeGb, live }, 'disk resized');
    return { disk: disk.id, size: sizeGb, live };
  }
}
