/** Disk resize (issue 10): a `disk.resize` task, offline through the image tool, live through the runtime. */
import { ResizeDiskEnvelope, TaskEnvelope, type Disk, type DiskEnvelope, type Task } from '@qemu-manager/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../packages/server/src/lib/errors.js';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const GiB = 1024 ** 3;

export function resizeSuite(): void {
  describe('disk resize', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });
    const newDisk = async (name: string, format = 'qcow2', size = 2): Promise<Disk> => {
      const r = await s.api('POST', '/disks', { name, size, format });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      await s.built.tasks.idle();
      return (r.body as DiskEnvelope).disk;
    };
    const getDisk = async (id: string): Promise<Disk> => ((await s.api('GET', `/disks/${id}`)).body as DiskEnvelope).disk;
    const getTask = async (id: string): Promise<Task> => ((await s.api('GET', `/tasks/${id}`)).body as TaskEnvelope).task;
    const resize = (id: string, size: unknown) => s.api('POST', `/disks/${id}/resize`, { size });
    const newVm = async (name: string, disks: Disk[]): Promise<string> => {
      const r = await s.api('POST', '/vms', { name, cpus: 1, memory: 128 });
      expect(r.status).toBe(201);
      const id = r.body.vm.id as string;
      for (const d of disks) expect((await s.api('POST', `/vms/${id}/disks/attach`, { diskPath: d.path })).status).toBe(200);
      return id;
    };

    it('a disk of no VM: 202 { task }, qemu-img grows the file, the size is recorded when the task succeeds', async () => {
      const disk = await newDisk('grow-me');
      const r = await resize(disk.id, 5);
      expect(r.status).toBe(202);
      expectShape(ResizeDiskEnvelope, r.body);
      const { task } = r.body as ResizeDiskEnvelope;
      expect(task).toMatchObject({ kind: 'disk.resize', target: { disk: disk.id, vm: null } });
      await s.built.tasks.idle();
      expect(await getTask(task.id)).toMatchObject({ status: 'succeeded', progress: 1, bytesDone: 5 * GiB, bytesTotal: 5 * GiB, result: { disk: disk.id, size: 5, live: false } });
      expect(s.images.calls.filter((c) => c.method === 'resize').map((c) => c.arg)).toEqual([disk.path]);
      expect(await getDisk(disk.id)).toMatchObject({ size: 5, info: { 'virtual-size': 5 * GiB } });
    });

    it('refusals, each with nothing changed: unknown 404, shrink or same size 409, vmdk 409, not ready 409, bad size 400', async () => {
      const disk = await newDisk('keep-me', 'raw', 3);
      const before = s.images.count('resize');
      expectError(await resize('no-such-disk', 4), 'DISK_NOT_FOUND', 404, 'Disk not found: no-such-disk');
      expectError(
        await resize(disk.id, 2),
        'DISK_CANNOT_SHRINK',
        409,
        'Disk keep-me is 3 GB; a resize only grows a disk (shrinking would cut off whatever the guest keeps at its end): ask for more than 3 GB',
      );
      expectError(await resize(disk.id, 3), 'DISK_CANNOT_SHRINK', 409, 'Disk keep-me is already 3 GB; a resize only grows a disk: ask for more than 3 GB');
      expectError(await resize(disk.id, 0), 'VALIDATION', 400, /^body\/size must be >= 1|^body\.size must be >= 1/);
      expectError(await resize(disk.id, '4'), 'VALIDATION', 400, /size must be integer/);
      const vmdk = await newDisk('old-vmdk', 'vmdk', 1);
      expectError(await resize(vmdk.id, 2), 'DISK_NOT_RESIZABLE', 409, 'Disk old-vmdk is a vmdk image, which QEMU cannot resize; convert it to qcow2 or raw first');

      const gate = s.images.hold('create');
      const r = await s.api('POST', '/disks', { name: 'still-making', size: 1, format: 'qcow2' });
      await gate.reached;
      const making = (r.body as DiskEnvelope).disk;
      expectError(await resize(making.id, 2), 'DISK_NOT_READY', 409, 'Disk still-making is still being created; resize it once it is ready');
      gate.release();
      await s.built.tasks.idle();
      s.images.failNext('create', new Error('no space'));
      const failed = (await s.api('POST', '/disks', { name: 'never-made', size: 1, format: 'qcow2' })).body as DiskEnvelope;
      await s.built.tasks.idle();
      expectError(await resize(failed.disk.id, 2), 'DISK_NOT_READY', 409, /^Disk never-made was not created \(qemu-img create failed: no space\); there is nothing to resize$/);

      expect(s.images.count('resize')).toBe(before);
      expect((await getDisk(disk.id)).size).toBe(3);
    });

    it('while it runs: a second resize of the disk is 409 DISK_IN_USE, its VM is locked (VM_BUSY); cancel leaves the size', async () => {
      const disk = await newDisk('slow', 'qcow2', 2);
      const vmId = await newVm('resizing-vm', [disk]);
      const gate = s.images.hold('resize');
      const r = await resize(disk.id, 4);
      expect(r.status).toBe(202);
      const { task } = r.body as ResizeDiskEnvelope;
      expect(task.target).toEqual({ disk: disk.id, vm: vmId });
      await gate.reached;
      expectError(await resize(disk.id, 6), 'DISK_IN_USE', 409, 'Disk slow is being resized already; wait for that task to end');
      expectError(await s.api('POST', `/vms/${vmId}/start`), 'VM_BUSY', 409, 'VM is busy: resizeDisk is in progress');
      const cancelled = await s.api('DELETE', `/tasks/${task.id}`);
      expect((cancelled.body as TaskEnvelope).task.status).toBe('cancelled');
      gate.release();
      await s.built.tasks.idle();
      expect((await getDisk(disk.id)).size).toBe(2);
      // Lock and disk are free again.
      expect((await s.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
      const again = await resize(disk.id, 4);
      expect(again.status).toBe(202);
      await s.built.tasks.idle();
      expect(await getTask((again.body as ResizeDiskEnvelope).task.id)).toMatchObject({ status: 'succeeded', result: { live: false } });
      expect((await getDisk(disk.id)).size).toBe(4);
    });

    it('a disk of no VM being resized cannot be attached to a VM until the task ends (409 DISK_IN_USE, nothing attached)', async () => {
      const disk = await newDisk('loose', 'qcow2', 2);
      const vmId = await newVm('wants-loose', []);
      const gate = s.images.hold('resize');
      const r = await resize(disk.id, 3);
      expect(r.status).toBe(202);
      const { task } = r.body as ResizeDiskEnvelope;
      await gate.reached;
      expectError(
        await s.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: disk.path }),
        'DISK_IN_USE',
        409,
        `Disk loose is busy with a disk.resize task (${task.id}); attach it when that task ends`,
      );
      expect((await s.api('GET', `/vms/${vmId}`)).body.vm.disks).toEqual([]);
      gate.release();
      await s.built.tasks.idle();
      expect((await getDisk(disk.id)).size).toBe(3);
      expect((await s.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    });

    it('a disk of a running VM is grown live by the runtime (its place in the VM), not by qemu-img; a refusal by QEMU fails the task', async () => {
      const first = await newDisk('live-a', 'qcow2', 1);
      const second = await newDisk('live-b', 'raw', 2);
      const vmId = await newVm('live-vm', [first, second]);
      expect((await s.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
      const offline = s.images.count('resize');

      const r = await resize(second.id, 3);
      expect(r.status).toBe(202);
      await s.built.tasks.idle();
      expect(await getTask((r.body as ResizeDiskEnvelope).task.id)).toMatchObject({ status: 'succeeded', result: { disk: second.id, size: 3, live: true } });
      expect(s.runtime.resizes).toEqual([{ vmId, diskIndex: 1, bytes: 3 * GiB }]);
      expect(s.images.count('resize')).toBe(offline);
      expect((await getDisk(second.id)).size).toBe(3);

      s.runtime.failNext('resizeDisk', new AppError('QEMU_ERROR', 'QEMU refused the disk resize: no space'));
      const refused = await resize(first.id, 2);
      await s.built.tasks.idle();
      expect(await getTask((refused.body as ResizeDiskEnvelope).task.id)).toMatchObject({ status: 'failed', error: 'QEMU refused the disk resize: no space' });
      expect((await getDisk(first.id)).size).toBe(1);
      expect((await s.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    });
  });
}
