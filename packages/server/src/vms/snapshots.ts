import type { CreateSnapshotBody, Snapshot, Task } from '@qemu-manager/contract';
import { refuseTemplate } from './template.js'; // templates (issue 12)
import { refuseBase } from '../disks/chain.js';
import { AppError, errorMessage } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import { freezeWindow } from './freeze.js'; // fsfreeze (issue 14)
import type { ImageTool } from '../runtime/port.js';
import type { TaskService } from '../tasks/service.js';
import { requireVm, type VmContext } from './context.js';
import type { OpLock } from './locks.js';
import type { VmRecord } from './repo.js';
import type { SnapshotRepo } from './snapshot-repo.js';

/** A disk of the VM as the snapshot works on it: its path, and its index in the launch order. */
interface SnapDisk {
  path: string;
  index: number;
}

/**
 * Internal (qcow2) snapshots of all of a VM's disks, each operation a task. A stopped VM: qemu-img
 * on every image (the server opens them; no QEMU has them). A running or paused VM: QEMU itself,
 * over QMP: disks only in one transaction (the guest keeps running), or with the RAM state as a
 * snapshot-save job (the guest stops only while QEMU saves). The images keep tag, date and VM
 * state; name, description, parent, current and the disk list are rows of vm_snapshots.
 *
 * The VM's lock is held from the request until the task ends: no start, stop, attach or delete
 * (nor a second snapshot operation) runs in between; a second request is 409 VM_BUSY at once.
 */
export class SnapshotService {
  constructor(
    private readonly ctx: VmContext,
    private readonly repo: SnapshotRepo,
    private readonly images: ImageTool,
    private readonly tasks: TaskService,
  ) {}

  list(vmId: string): Snapshot[] {
    requireVm(this.ctx, vmId);
    return this.repo.list(vmId);
  }

  create(vmId: string, body: CreateSnapshotBody): Task {
    const vm = requireVm(this.ctx, vmId);
    refuseTemplate(vm, 'snapshotted'); // templates (issue 12)
    const name = body.name;
    if (/^[0-9]+$/.test(name)) {
      throw new AppError('VALIDATION', `body.name may not be digits only (${name}): QEMU would take it for the id of another snapshot`);
    }
    if (this.repo.get(vmId, name)) throw new AppError('NAME_TAKEN', `VM ${vm.name} already has a snapshot named ${name}`);
    const disks = this.qcow2Disks(vm, 'take a snapshot');
    const live = this.isLive(vm, 'take a snapshot');
    const memory = body.includeMemory === true;
    if (memory && !live) {
      throw new AppError('VM_NOT_RUNNING', `VM ${vm.name} is stopped: it has no memory to save; take the snapshot without includeMemory`);
    }
    return this.locked(vmId, 'vm.snapshot', async () => {
      if (this.repo.get(vmId, name)) throw new AppError('NAME_TAKEN', `VM ${vm.name} already has a snapshot named ${name}`);
      // A tag already in an image (made outside the server) would make two snapshots of one name.
      for (const d of disks) {
        if ((await this.images.snapshots(d.path, 'qcow2')).some((s) => s.name === name)) {
          throw new AppError('NAME_TAKEN', `The image ${d.path} already has an internal snapshot named ${name} (not made by this server)`);
        }
      }
      if (live) {
        // fsfreeze (issue 14): a disk-only snapshot of a running guest is taken with its file
        // systems frozen when its agent answers. Never with memory: a revert would bring back a
        // frozen guest that nothing thaws.
        const notes: string[] = [];
        const freeze = memory ? null : freezeWindow(this.ctx.runtime, vmId, notes, this.ctx.log);
        await freeze?.before();
        try {
          await this.ctx.runtime.saveSnapshot(vmId, name, { disks: disks.map((d) => d.index), memory });
        } finally {
          await freeze?.after();
        }
        if (notes.length) this.ctx.log.warn({ vmId, snapshot: name, notes }, 'snapshot taken without a guest freeze');
      } else {
        const done: SnapDisk[] = [];
        try {
          for (const d of disks) {
            await this.images.snapshot(d.path, 'qcow2', 'create', name);
            done.push(d);
          }
        } catch (err) {
          // All disks or none: take back the ones already made.
          for (const d of done) await this.images.snapshot(d.path, 'qcow2', 'delete', name).catch(() => undefined);
          throw err;
        }
      }
      const sizeBytes = memory ? await this.vmStateBytes(disks[0]!.path, name) : 0;
      this.repo.insert(vmId, { name, description: body.description ?? '', createdAt: nowIso(), vmState: memory, sizeBytes, disks: disks.map((d) => d.path) });
      return { snapshot: name };
    });
  }

  revert(vmId: string, name: string): Task {
    const vm = requireVm(this.ctx, vmId);
    refuseTemplate(vm, 'reverted'); // templates (issue 12)
    const snap = this.require(vm, name);
    const disks = this.qcow2Disks(vm, 'revert to a snapshot');
    const changed = disks.length !== snap.disks.length || disks.some((d, i) => d.path !== snap.disks[i]);
    if (changed) {
      throw new AppError(
        'SNAPSHOT_UNSUPPORTED',
        `The disks of VM ${vm.name} changed since snapshot ${name} was taken (it has ${snap.disks.join(', ')}; the VM has ${disks.map((d) => d.path).join(', ')}): attach the same disks to revert`,
      );
    }
    const live = this.isLive(vm, 'revert to a snapshot');
    if (live && !snap.vmState) {
      throw new AppError('VM_NOT_STOPPED', `Snapshot ${name} holds the disks only, not the memory of the running VM: stop VM ${vm.name} first, then revert`);
    }
    return this.locked(vmId, 'vm.revert', async () => {
      if (live) {
        await this.ctx.runtime.loadSnapshot(vmId, name, { disks: disks.map((d) => d.index) });
      } else {
        // Every image must have it before any is reverted: never half a revert.
        for (const d of disks) {
          if (!(await this.images.snapshots(d.path, 'qcow2')).some((s) => s.name === name)) {
            throw new AppError('SNAPSHOT_NOT_FOUND', `The image ${d.path} no longer has the snapshot ${name}; nothing was reverted`);
          }
        }
        for (const d of disks) await this.images.snapshot(d.path, 'qcow2', 'apply', name);
      }
      this.repo.makeCurrent(vmId, name);
      return { snapshot: name };
    });
  }

  remove(vmId: string, name: string): Task {
    const vm = requireVm(this.ctx, vmId);
    refuseTemplate(vm, 'changed by a snapshot delete'); // templates (issue 12)
    const snap = this.require(vm, name);
    const live = this.isLive(vm, 'delete a snapshot');
    // The images of the snapshot that are still this VM's disks; one detached since keeps its copy.
    const disks = this.attached(vm).filter((d) => snap.disks.includes(d.path));
    return this.locked(vmId, 'vm.snapshot.delete', async () => {
      if (live && disks.length) {
        await this.ctx.runtime.deleteSnapshot(vmId, name, { disks: disks.map((d) => d.index) });
      } else {
        for (const d of disks) {
          if ((await this.images.snapshots(d.path, 'qcow2')).some((s) => s.name === name)) {
            await this.images.snapshot(d.path, 'qcow2', 'delete', name);
          }
        }
      }
      this.repo.delete(vmId, name);
      return { snapshot: name };
    });
  }

  // --- helpers -----------------------------------------------------------------------------

  /** Starts the task with the VM's lock held until it ends. */
  private locked(vmId: string, kind: 'vm.snapshot' | 'vm.revert' | 'vm.snapshot.delete', run: () => Promise<Record<string, unknown>>): Task {
    // Snapshots change the disks like a configuration change does: the same lock.
    const lock: OpLock = this.ctx.locks.hold(vmId, 'configure');
    try {
      return this.tasks.start(kind, { vm: vmId }, async () => {
        try {
          return await run();
        } catch (err) {
          this.ctx.log.warn({ vmId, kind, err: errorMessage(err) }, 'snapshot task failed');
          throw err;
        } finally {
          lock.release();
        }
      });
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private require(vm: VmRecord, name: string): Snapshot {
    const snap = this.repo.get(vm.id, name);
    if (!snap) throw new AppError('SNAPSHOT_NOT_FOUND', `VM ${vm.name} has no snapshot named ${name}`);
    return snap;
  }

  /** Whether QEMU does the work (running or paused) or qemu-img (stopped); 409 between states. */
  private isLive(vm: VmRecord, what: string): boolean {
    if (vm.status === 'stopped') return false;
    if ((vm.status === 'running' || vm.status === 'paused') && this.ctx.runtime.process(vm.id)) return true;
    throw new AppError('VM_BUSY', `Cannot ${what} while VM ${vm.name} is ${vm.status}; try again in a moment`);
  }

  /** The VM's disks in launch order, with the format each opens in (a managed disk's own format). */
  private attached(vm: VmRecord): Array<SnapDisk & { format: string }> {
    return vm.disks.map((d, index) => ({ path: d.path, index, format: this.ctx.disks.byPath(d.path)?.format ?? d.format ?? 'raw' }));
  }

  /** Every disk, all of them qcow2: a raw or vmdk disk has no internal snapshots (409 naming it). */
  private qcow2Disks(vm: VmRecord, what: string): SnapDisk[] {
    const disks = this.attached(vm);
    if (disks.length === 0) throw new AppError('SNAPSHOT_UNSUPPORTED', `VM ${vm.name} has no disk: there is nothing to snapshot`);
    const other = disks.find((d) => d.format !== 'qcow2');
    if (other) {
      const managed = this.ctx.disks.byPath(other.path);
      const named = managed ? `disk ${managed.name} (${other.path})` : `disk ${other.path}`;
      throw new AppError('SNAPSHOT_UNSUPPORTED', `Cannot ${what} of VM ${vm.name}: ${named} is ${other.format}; only qcow2 disks have snapshots`);
    }
    // A base of linked clones is never written (a snapshot's revert or delete would change what they read).
    for (const d of disks) {
      const managed = this.ctx.disks.byPath(d.path);
      if (managed) refuseBase(this.ctx.disks, managed, `snapshotted (${what})`);
    }
    return disks.map(({ path, index }) => ({ path, index }));
  }

  /** The saved VM state's size, from the image holding it (0 if it cannot be read now). */
  private async vmStateBytes(file: string, name: string): Promise<number> {
    try {
      return (await this.images.snapshots(file, 'qcow2')).find((s) => s.name === name)?.vmStateBytes ?? 0;
    } catch (err) {
      this.ctx.log.warn({ file, err: errorMessage(err) }, 'could not read the size of a snapshot');
      return 0;
    }
  }
}
