/** Clones and backing chains (issue 10): VM and disk clones, full and linked, over the fake image tool. */
import { DiskEnvelope, TaskEnvelope, VmEnvelope, type Disk, type Task, type Vm } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function cloneSuite(): void {
  describe('clones and backing chains', () => {
    let s: InProcessServer;
    const disk = async (id: string): Promise<Disk> => ((await s.api('GET', `/disks/${id}`)).body as DiskEnvelope).disk;
    const makeDisk = async (name: string, format = 'qcow2'): Promise<Disk> => {
      const r = await s.api('POST', '/disks', { name, size: 1, format });
      expect(r.status).toBe(201);
      await s.built.tasks.idle();
      return disk((r.body as { disk: Disk }).disk.id);
    };
    const makeVm = async (name: string, withDisk: Disk | null): Promise<Vm> => {
      const vm = ((await s.api('POST', '/vms', { name, cpus: 1, memory: 96 })).body as VmEnvelope).vm;
      if (withDisk) expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: withDisk.path })).status).toBe(200);
      return vm;
    };
    const finished = async (task: Task): Promise<Task> => {
      await s.built.tasks.idle();
      return ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
    };

    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('a linked VM clone: a new VM (id, MAC, port; same cpus and memory) on a qcow2 overlay of the source disk; the chain is shown', async () => {
      const base = await makeDisk('lbase');
      const src = await makeVm('lsrc', base);
      const r = await s.api('POST', `/vms/${src.id}/clone`, { name: 'lclone', mode: 'linked' });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(TaskEnvelope, r.body);
      const task = await finished((r.body as TaskEnvelope).task);
      expect(task).toMatchObject({ kind: 'vm.clone', status: 'succeeded', target: { vm: src.id }, progress: 1 });
      const cloneId = task.result!.vm as string;
      const clone = ((await s.api('GET', `/vms/${cloneId}`)).body as VmEnvelope).vm;
      expect(clone).toMatchObject({ name: 'lclone', cpus: 1, memory: 96, status: 'stopped' });
      expect(clone.mac).not.toBe(src.mac);
      expect(clone.vnc_port).not.toBe(src.vnc_port);
      expect(clone.disks).toHaveLength(1);
      const child = await disk(clone.disks[0].diskId!);
      expect(child).toMatchObject({ name: 'lclone-disk0', format: 'qcow2', status: 'ready', backingFile: base.path, children: [], path: path.join(s.dataDir, 'disks', 'lclone-disk0.qcow2') });
      expect(task.result).toEqual({ vm: cloneId, disks: [child.id] });
      expect((await disk(base.id)).children).toEqual([child.id]);
      expect(fs.existsSync(`${child.path}.part`)).toBe(false);
      expect(fs.statSync(child.path).mode & 0o777).toBe(0o600);

      // The managed overlay may back onto the managed base (at start too); the base may not be written or deleted.
      const started = await s.api('POST', `/vms/${cloneId}/start`);
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      expectError(await s.api('POST', `/vms/${src.id}/start`), 'DISK_HAS_CHILDREN', 409,
        'Disk lbase is the backing file of disk lclone-disk0; it cannot be written by a running VM while that disk exists (delete it first, or make a full clone)');
      // Nor grown, nor snapshotted (a revert would change what the overlay reads).
      expectError(await s.api('POST', `/disks/${base.id}/resize`, { size: 50 }), 'DISK_HAS_CHILDREN', 409, /^Disk lbase is the backing file of disk lclone-disk0; it cannot be resized/);
      expectError(await s.api('POST', `/vms/${src.id}/snapshots`, { name: 'onbase' }), 'DISK_HAS_CHILDREN', 409, /^Disk lbase is the backing file of disk lclone-disk0; it cannot be snapshotted/);
      expect((await s.api('POST', `/vms/${src.id}/disks/detach`, { diskPath: base.path })).status).toBe(200);
      expectError(await s.api('DELETE', `/disks/${base.id}`), 'DISK_HAS_CHILDREN', 409, /^Disk lbase is the backing file of disk lclone-disk0; it cannot be deleted/);
      expect(fs.existsSync(base.path)).toBe(true);
      expect(s.built.disks.list().map((d) => d.id)).toContain(base.id);

      // Once the overlay is gone, the base is an ordinary disk again.
      expect((await s.api('POST', `/vms/${cloneId}/stop`)).status).toBe(200);
      expect((await s.api('DELETE', `/vms/${cloneId}`)).status).toBe(200);
      expect((await s.api('DELETE', `/disks/${child.id}`)).status).toBe(200);
      expect((await disk(base.id)).children).toEqual([]);
      expect((await s.api('DELETE', `/disks/${base.id}`)).status).toBe(200);
    });

    it('an external image that backs onto a managed disk is still refused at attach', async () => {
      const base = await makeDisk('extbase');
      const ext = path.join(s.dataDir, 'disks', 'outsider.qcow2');
      await s.images.overlay(ext, { file: base.path, format: 'qcow2' });
      const vm = await makeVm('outsidervm', null);
      expectError(await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: ext, format: 'qcow2' }), 'IMAGE_NOT_ALLOWED', 400,
        `${ext} has the managed disk extbase as a backing file; a VM's disk is never another image's backing file`);
    });

    it('a full disk clone reports progress, writes to a temporary name, and ends as a self-contained disk', async () => {
      const src = await makeDisk('fsrc', 'raw');
      fs.writeFileSync(src.path, Buffer.alloc(8192, 0x5a));
      const other = await makeDisk('fother', 'raw');
      const gate = s.images.hold('copy');
      const r = await s.api('POST', `/disks/${src.id}/clone`, { name: 'fcopy', mode: 'full' });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const { task } = r.body as TaskEnvelope;
      expect(task).toMatchObject({ kind: 'disk.clone', target: { disk: src.id, vm: null } });
      await gate.reached;
      const part = path.join(s.dataDir, 'disks', 'fcopy.img.part');
      expect(fs.existsSync(part)).toBe(true);
      const running = ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
      expect(running).toMatchObject({ status: 'running', bytesTotal: 1024 ** 3, bytesDone: 1024 ** 3 / 2, progress: 0.5 });
      // While it runs the name is taken, and the disk cannot be cloned again under it.
      expectError(await s.api('POST', `/disks/${src.id}/clone`, { name: 'fcopy', mode: 'full' }), 'NAME_TAKEN', 409, 'A disk named fcopy already exists');
      // Nor can a conversion or an import plan that name meanwhile (one reservation for all of them).
      expectError(await s.api('POST', `/disks/${other.id}/convert`, { format: 'qcow2', name: 'fcopy' }), 'NAME_TAKEN', 409, 'A disk named fcopy already exists');
      expectError(await s.api('POST', '/disks/import', { name: 'fcopy', url: 'http://127.0.0.1:9/none.qcow2' }), 'NAME_TAKEN', 409, 'A disk named fcopy already exists');
      gate.release();
      const done = await finished(task);
      expect(done).toMatchObject({ status: 'succeeded', progress: 1 });
      const copy = await disk(done.result!.disk as string);
      expect(copy).toMatchObject({ name: 'fcopy', format: 'raw', backingFile: null, children: [], attachedTo: null });
      expect(fs.readFileSync(copy.path).equals(fs.readFileSync(src.path))).toBe(true);
      expect(fs.existsSync(part)).toBe(false);
      expect((await disk(src.id)).children).toEqual([]);
    });

    it('a cancelled clone leaves nothing: no file, no disk, no VM', async () => {
      const src = await makeDisk('csrc');
      const vm = await makeVm('cvm', src);
      const before = { disks: s.built.disks.list().length, vms: s.built.vms.list().length };
      const gate = s.images.hold('copy');
      const r = await s.api('POST', `/vms/${vm.id}/clone`, { name: 'cclone', mode: 'full' });
      expect(r.status).toBe(202);
      const { task } = r.body as TaskEnvelope;
      await gate.reached;
      // The source is locked while it is read.
      expectError(await s.api('POST', `/vms/${vm.id}/start`), 'VM_BUSY', 409, /configure/);
      const cancelled = await s.api('DELETE', `/tasks/${task.id}`);
      expect((cancelled.body as TaskEnvelope).task).toMatchObject({ status: 'cancelled' });
      gate.release();
      await s.built.tasks.idle();
      expect(fs.readdirSync(path.join(s.dataDir, 'disks')).filter((f) => f.startsWith('cclone'))).toEqual([]);
      expect({ disks: s.built.disks.list().length, vms: s.built.vms.list().length }).toEqual(before);
      expect((await s.api('POST', `/vms/${vm.id}/clone`, { name: 'cclone', mode: 'linked' })).status).toBe(202);
      await s.built.tasks.idle();
    });

    it('refusals: running source, taken names, external image linked, unknown ids, bad bodies', async () => {
      const src = await makeDisk('rsrc');
      const vm = await makeVm('rvm', src);
      expectError(await s.api('POST', `/vms/${vm.id}/clone`, { name: 'rvm', mode: 'full' }), 'NAME_TAKEN', 409, 'A VM named rvm already exists');
      await makeDisk('rnew-disk0');
      expectError(await s.api('POST', `/vms/${vm.id}/clone`, { name: 'rnew', mode: 'linked' }), 'NAME_TAKEN', 409, 'A disk named rnew-disk0 already exists');
      expectError(await s.api('POST', `/disks/${src.id}/clone`, { name: 'rsrc', mode: 'linked' }), 'NAME_TAKEN', 409, 'A disk named rsrc already exists');
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expectError(await s.api('POST', `/vms/${vm.id}/clone`, { name: 'rrun', mode: 'full' }), 'VM_NOT_STOPPED', 409, 'Cannot clone VM rvm while it is running; stop it first');
      expectError(await s.api('POST', `/disks/${src.id}/clone`, { name: 'rrun', mode: 'full' }), 'VM_NOT_STOPPED', 409, 'Disk rsrc is attached to VM rvm, which is running; stop it first');
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);

      const ext = path.join(s.dataDir, 'disks', 'loose.img');
      fs.writeFileSync(ext, Buffer.alloc(4096));
      const evm = await makeVm('evm', null);
      expect((await s.api('POST', `/vms/${evm.id}/disks/attach`, { diskPath: ext })).status).toBe(200);
      expectError(await s.api('POST', `/vms/${evm.id}/clone`, { name: 'eclone', mode: 'linked' }), 'IMAGE_NOT_ALLOWED', 400,
        `${ext} is not a managed disk: a linked clone backs onto managed disks only (make a full clone)`);

      expectError(await s.api('POST', '/vms/nope/clone', { name: 'x', mode: 'full' }), 'VM_NOT_FOUND', 404, 'VM not found: nope');
      expectError(await s.api('POST', '/disks/nope/clone', { name: 'x', mode: 'full' }), 'DISK_NOT_FOUND', 404, 'Disk not found: nope');
      expectError(await s.api('POST', `/vms/${vm.id}/clone`, { name: 'x', mode: 'thin' }), 'VALIDATION', 400, /^body\.mode must be equal to constant/);
      expectError(await s.api('POST', `/disks/${src.id}/clone`, { name: '../x', mode: 'full' }), 'VALIDATION', 400, /^body\.name may only contain letters/);
      expect(s.built.vms.list().map((v) => v.name).filter((n) => n.startsWith('r') || n.startsWith('e'))).toEqual(['rvm', 'evm']);
    });
  });
}
