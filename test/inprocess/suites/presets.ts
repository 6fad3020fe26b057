/**
 * Hardware options and templates (issue 12, second part): machine, disk bus, NIC model, boot
 * order, OS presets and the drivers ISO at create and while stopped (what the runtime is given at
 * start, the refusals leaving the VM as it was); templates (the VM_IS_TEMPLATE rules, a VM made
 * from a template as a linked clone by a vm.create task, deleting a template with clones).
 */
import { CloudInitEnvelope, DiskEnvelope, TaskEnvelope, VmEnvelope, type Disk, type Task, type Vm } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function presetSuite(): void {
  describe('hardware options: machine, disk bus, NIC, boot order, presets, drivers ISO (issue 12)', () => {
    let s: InProcessServer;
    let virtioWin: string;
    const get = async (id: string): Promise<Vm> => ((await s.api('GET', `/vms/${id}`)).body as VmEnvelope).vm;
    const makeDisk = async (name: string): Promise<Disk> => {
      const r = await s.api('POST', '/disks', { name, size: 1, format: 'qcow2' });
      expect(r.status).toBe(201);
      await s.built.tasks.idle();
      return ((await s.api('GET', `/disks/${(r.body as DiskEnvelope).disk.id}`)).body as DiskEnvelope).disk;
    };
    const lastLaunch = (id: string) => s.runtime.launches.filter((l) => l.vmId === id).at(-1);
    beforeAll(async () => {
      s = await startInProcess();
      virtioWin = path.join(s.dataDir, 'isos', 'virtio-win-0.1.262.iso');
      fs.writeFileSync(virtioWin, Buffer.alloc(64 * 1024));
      fs.writeFileSync(path.join(s.dataDir, 'isos', 'virtio-win-0.1.99.iso'), Buffer.alloc(64 * 1024));
    });
    afterAll(async () => {
      await s.close();
    });

    it('a new VM has the defaults: q35, virtio disk and NIC, disk then cdrom, other, no drivers ISO, not a template', async () => {
      const r = await s.api('POST', '/vms', { name: 'opt-plain', cpus: 1, memory: 64 });
      expect(r.status).toBe(201);
      expectShape(VmEnvelope, r.body);
      expect((r.body as VmEnvelope).vm).toMatchObject({
        machine: 'q35', diskBus: 'virtio', nicModel: 'virtio', bootOrder: ['disk', 'cdrom'], osType: 'other', driversIso: null, template: false,
      });
    });

    it('osType windows: UEFI + Secure Boot + TPM + SATA + e1000e and the library virtio-win ISO; the start hands them to the runtime', async () => {
      const r = await s.api('POST', '/vms', { name: 'opt-win', cpus: 1, memory: 64, osType: 'windows' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const vm = (r.body as VmEnvelope).vm;
      expect(vm).toMatchObject({
        firmware: 'uefi', secureBoot: true, tpm: true, machine: 'q35', diskBus: 'sata', nicModel: 'e1000e', osType: 'windows', driversIso: virtioWin,
      });
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      const launch = lastLaunch(vm.id)!;
      expect(launch.hardware).toEqual({ firmware: 'uefi', secureBoot: true, tpm: true, machine: 'q35', diskBus: 'sata', nicModel: 'e1000e', bootOrder: ['disk', 'cdrom'] });
      expect(launch.driversIso).toEqual({ fd: expect.any(Number) });
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      // while it is the drivers CD-ROM of a VM, the ISO cannot be deleted
      expectError(await s.api('DELETE', '/isos/virtio-win-0.1.262.iso'), 'ISO_IN_USE', 409, /virtio-win-0\.1\.262\.iso/);
    });

    it('explicit body fields win over the preset (a driversIso of null included); osType linux is virtio', async () => {
      const win = (await s.api('POST', '/vms', { name: 'opt-win2', cpus: 1, memory: 64, osType: 'windows', tpm: false, nicModel: 'rtl8139', driversIso: null })).body as VmEnvelope;
      expect(win.vm).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: false, diskBus: 'sata', nicModel: 'rtl8139', driversIso: null });
      const linux = (await s.api('POST', '/vms', { name: 'opt-linux', cpus: 1, memory: 64, osType: 'linux', machine: 'pc', bootOrder: ['cdrom', 'disk', 'network'] })).body as VmEnvelope;
      expect(linux.vm).toMatchObject({ firmware: 'bios', machine: 'pc', diskBus: 'virtio', nicModel: 'virtio', osType: 'linux', bootOrder: ['cdrom', 'disk', 'network'], driversIso: null });
    });

    it('POST /vms refuses Secure Boot on pc, a drivers ISO outside the rules, a repeated boot device; nothing is created', async () => {
      expectError(await s.api('POST', '/vms', { name: 'opt-bad', cpus: 1, memory: 64, osType: 'windows', machine: 'pc' }), 'VALIDATION', 400, /needs the q35 machine \(SMM\)/);
      expectError(await s.api('POST', '/vms', { name: 'opt-bad', cpus: 1, memory: 64, driversIso: '/etc/passwd' }), 'PATH_NOT_ALLOWED', 400, /passwd/);
      const disk = await makeDisk('opt-a-disk');
      expectError(await s.api('POST', '/vms', { name: 'opt-bad', cpus: 1, memory: 64, driversIso: disk.path }), 'IMAGE_NOT_ALLOWED', 400, /managed disk opt-a-disk/);
      expect((await s.api('POST', '/vms', { name: 'opt-bad', cpus: 1, memory: 64, bootOrder: ['disk', 'disk'] })).status).toBe(400);
      expect((await s.api('POST', '/vms', { name: 'opt-bad', cpus: 1, memory: 64, nicModel: 'ne2k' })).status).toBe(400);
      expect((await s.api('GET', '/vms')).body.vms.map((v: Vm) => v.name)).not.toContain('opt-bad');
    });

    it('PUT /vms/{id}/hardware changes machine, bus, NIC, boot order and the drivers ISO of a stopped VM; null removes it', async () => {
      const vm = ((await s.api('POST', '/vms', { name: 'opt-edit', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      const r = await s.api('PUT', `/vms/${vm.id}/hardware`, { machine: 'pc', diskBus: 'sata', nicModel: 'e1000e', bootOrder: ['cdrom', 'disk'], osType: 'linux', driversIso: virtioWin });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expectShape(VmEnvelope, r.body);
      expect((r.body as VmEnvelope).vm).toMatchObject({ machine: 'pc', diskBus: 'sata', nicModel: 'e1000e', bootOrder: ['cdrom', 'disk'], osType: 'linux', driversIso: virtioWin, firmware: 'bios' });
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect(lastLaunch(vm.id)?.hardware).toMatchObject({ machine: 'pc', diskBus: 'sata', nicModel: 'e1000e', bootOrder: ['cdrom', 'disk'] });
      expectError(await s.api('PUT', `/vms/${vm.id}/hardware`, { machine: 'q35' }), 'VM_NOT_STOPPED', 409, /stop it first/);
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      expect((await s.api('PUT', `/vms/${vm.id}/hardware`, { driversIso: null })).body.vm).toMatchObject({ driversIso: null, machine: 'pc' });
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect(lastLaunch(vm.id)?.driversIso).toBeNull();
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('PUT hardware refuses what the argv cannot build (too many SATA/IDE units on pc, Secure Boot on pc); the start refuses in words', async () => {
      const vm = ((await s.api('POST', '/vms', { name: 'opt-ide', cpus: 1, memory: 64, machine: 'pc', diskBus: 'sata' })).body as VmEnvelope).vm;
      for (const n of [0, 1, 2]) {
        const d = await makeDisk(`opt-ide-${n}`);
        expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: d.path })).status).toBe(200);
      }
      const before = await get(vm.id);
      // 3 IDE disks + the ISO drive fill the 4 units: no room for the drivers CD-ROM
      expectError(await s.api('PUT', `/vms/${vm.id}/hardware`, { driversIso: virtioWin }), 'VALIDATION', 400, /3 SATA disks and 2 CD-ROMs do not fit: the pc machine has 4 IDE units/);
      expectError(await s.api('PUT', `/vms/${vm.id}/hardware`, { firmware: 'uefi', secureBoot: true }), 'VALIDATION', 400, /Secure Boot needs the q35 machine/);
      expect(await get(vm.id)).toEqual(before);
      // a fourth disk is attached; the start says why it cannot be built
      const d = await makeDisk('opt-ide-3');
      expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: d.path })).status).toBe(200);
      expectError(await s.api('POST', `/vms/${vm.id}/start`), 'QEMU_START_FAILED', 422, /4 SATA disks and 1 CD-ROM do not fit: the pc machine has 4 IDE units/);
      expect((await get(vm.id)).status).toBe('stopped');
      // on q35 (6 ports) or on virtio they fit
      expect((await s.api('PUT', `/vms/${vm.id}/hardware`, { machine: 'q35' })).status).toBe(200);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('a drivers ISO that became a disk or is missing at start is a clear refusal', async () => {
      const iso = path.join(s.dataDir, 'isos', 'drivers-gone.iso');
      fs.writeFileSync(iso, Buffer.alloc(4096));
      const vm = ((await s.api('POST', '/vms', { name: 'opt-gone', cpus: 1, memory: 64, driversIso: iso })).body as VmEnvelope).vm;
      expect(vm.driversIso).toBe(iso);
      fs.rmSync(iso);
      expectError(await s.api('POST', `/vms/${vm.id}/start`), 'FILE_MISSING', 409, /drivers-gone\.iso/);
    });
  });
}

export function templateSuite(): void {
  describe('templates (issue 12)', () => {
    let s: InProcessServer;
    const get = async (id: string): Promise<Vm> => ((await s.api('GET', `/vms/${id}`)).body as VmEnvelope).vm;
    const disk = async (id: string): Promise<Disk> => ((await s.api('GET', `/disks/${id}`)).body as DiskEnvelope).disk;
    const makeDisk = async (name: string): Promise<Disk> => {
      const r = await s.api('POST', '/disks', { name, size: 1, format: 'qcow2' });
      expect(r.status).toBe(201);
      await s.built.tasks.idle();
      return disk((r.body as DiskEnvelope).disk.id);
    };
    const finished = async (task: Task): Promise<Task> => {
      await s.built.tasks.idle();
      return ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
    };
    let tpl: Vm;
    let base: Disk;
    let spare: Disk;
    beforeAll(async () => {
      s = await startInProcess();
      base = await makeDisk('tpl-base');
      spare = await makeDisk('tpl-spare');
      tpl = ((await s.api('POST', '/vms', { name: 'tpl', cpus: 2, memory: 96, osType: 'linux', nicModel: 'rtl8139' })).body as VmEnvelope).vm;
      expect((await s.api('POST', `/vms/${tpl.id}/disks/attach`, { diskPath: base.path })).status).toBe(200);
      expect((await s.api('POST', `/vms/${tpl.id}/snapshots`, { name: 'before' })).status).toBe(202);
      await s.built.tasks.idle();
    });
    afterAll(async () => {
      await s.close();
    });

    it('POST /vms/{id}/template makes a stopped VM a template; refusals: running, no disk, unknown VM', async () => {
      const empty = ((await s.api('POST', '/vms', { name: 'tpl-empty', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      expectError(await s.api('POST', `/vms/${empty.id}/template`), 'VALIDATION', 400, /has no disk/);
      expect((await get(empty.id)).template).toBe(false);
      expectError(await s.api('POST', '/vms/00000000-0000-4000-8000-000000000000/template'), 'VM_NOT_FOUND', 404, /not found/i);
      expect((await s.api('POST', `/vms/${tpl.id}/start`)).status).toBe(200);
      expectError(await s.api('POST', `/vms/${tpl.id}/template`), 'VM_NOT_STOPPED', 409, /stop it first/);
      expect((await s.api('POST', `/vms/${tpl.id}/stop`)).status).toBe(200);
      const r = await s.api('POST', `/vms/${tpl.id}/template`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expectShape(VmEnvelope, r.body);
      expect((r.body as VmEnvelope).vm).toMatchObject({ id: tpl.id, template: true });
    });

    it('a template cannot start, and its disks cannot be attached, detached, resized, converted, snapshotted or reverted (409 VM_IS_TEMPLATE)', async () => {
      const before = await get(tpl.id);
      const launches = s.runtime.launches.length;
      expectError(await s.api('POST', `/vms/${tpl.id}/start`), 'VM_IS_TEMPLATE', 409, /is a template: its disks are read-only bases, it cannot be started/);
      expectError(await s.api('POST', `/vms/${tpl.id}/disks/attach`, { diskPath: spare.path }), 'VM_IS_TEMPLATE', 409, /cannot be given another disk/);
      expectError(await s.api('POST', `/vms/${tpl.id}/disks/detach`, { diskPath: base.path }), 'VM_IS_TEMPLATE', 409, /cannot be left without a disk/);
      expectError(await s.api('POST', `/disks/${base.id}/resize`, { size: 2 }), 'VM_IS_TEMPLATE', 409, /cannot be resized/);
      expectError(await s.api('POST', `/disks/${base.id}/convert`, { format: 'raw', name: 'tpl-raw' }), 'VM_IS_TEMPLATE', 409, /cannot be converted/);
      expectError(await s.api('POST', `/vms/${tpl.id}/snapshots`, { name: 'later' }), 'VM_IS_TEMPLATE', 409, /cannot be snapshotted/);
      expectError(await s.api('POST', `/vms/${tpl.id}/snapshots/before/revert`), 'VM_IS_TEMPLATE', 409, /cannot be reverted/);
      expectError(await s.api('DELETE', `/vms/${tpl.id}/snapshots/before`), 'VM_IS_TEMPLATE', 409, /snapshot delete/);
      expect(s.runtime.launches.length).toBe(launches);
      expect(await get(tpl.id)).toEqual(before);
      expect((await disk(base.id)).size).toBe(1);
    });

    it('POST /vms { name, template } → 202 vm.create: a linked clone with a new MAC and port, the template\'s CPUs, memory and hardware, body fields over them', async () => {
      const r = await s.api('POST', '/vms', { name: 'from-tpl', template: tpl.id, memory: 128, nicModel: 'e1000e' });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(TaskEnvelope, r.body);
      const task = await finished((r.body as TaskEnvelope).task);
      expect(task).toMatchObject({ kind: 'vm.create', status: 'succeeded', target: { vm: tpl.id } });
      const id = task.result!.vm as string;
      const vm = await get(id);
      expect(vm).toMatchObject({ name: 'from-tpl', cpus: 2, memory: 128, template: false, osType: 'linux', nicModel: 'e1000e', diskBus: 'virtio' });
      expect(vm.mac).not.toBe(tpl.mac);
      expect(vm.vnc_port).not.toBe(tpl.vnc_port);
      const child = await disk(vm.disks[0].diskId!);
      expect(child).toMatchObject({ name: 'from-tpl-disk0', format: 'qcow2', backingFile: base.path });
      expect((await disk(base.id)).children).toEqual([child.id]);
      // the new VM starts (on its overlay); the template is still a template
      expect((await s.api('POST', `/vms/${id}/start`)).status).toBe(200);
      expect(s.runtime.launches.at(-1)?.hardware).toMatchObject({ nicModel: 'e1000e' });
      expect((await s.api('POST', `/vms/${id}/stop`)).status).toBe(200);
      expect((await get(tpl.id)).template).toBe(true);
    });

    it('cloud-init (issue 12): a VM from a template gets the template\'s config under its own instance-id, or the body\'s over it (the password kept); a clone copies it too', async () => {
      const put = await s.api('PUT', `/vms/${tpl.id}/cloud-init`, { hostname: 'tpl-host', user: 'ops', password: 'tpl-secret' });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      const tplCi = (put.body as CloudInitEnvelope).cloudInit;
      const plain = await finished((await s.api('POST', '/vms', { name: 'tpl-ci-a', template: tpl.id })).body.task as Task);
      expect(plain.status, plain.error ?? '').toBe('succeeded');
      const a = (await s.api('GET', `/vms/${plain.result!.vm as string}/cloud-init`)).body as CloudInitEnvelope;
      expect(a.cloudInit).toMatchObject({ hostname: 'tpl-host', user: 'ops', password: '********' });
      expect(a.cloudInit.instanceId).not.toBe(tplCi.instanceId);
      expect((await get(plain.result!.vm as string)).cloudInit).toBe(true);
      const over = await finished((await s.api('POST', '/vms', { name: 'tpl-ci-b', template: tpl.id, cloudInit: { hostname: 'child-b' } })).body.task as Task);
      expect(over.status, over.error ?? '').toBe('succeeded');
      const b = (await s.api('GET', `/vms/${over.result!.vm as string}/cloud-init`)).body as CloudInitEnvelope;
      expect(b.cloudInit).toMatchObject({ hostname: 'child-b', user: null, password: '********' });
      expectError(await s.api('POST', '/vms', { name: 'tpl-ci-c', template: tpl.id, cloudInit: { userData: '- a list' } }), 'VALIDATION', 400, /userData/);
      expect((await s.api('GET', '/vms')).body.vms.map((v: Vm) => v.name)).not.toContain('tpl-ci-c');
      const cloned = await finished((await s.api('POST', `/vms/${plain.result!.vm as string}/clone`, { name: 'tpl-ci-clone', mode: 'linked' })).body.task as Task);
      expect(cloned.status, cloned.error ?? '').toBe('succeeded');
      const c = (await s.api('GET', `/vms/${cloned.result!.vm as string}/cloud-init`)).body as CloudInitEnvelope;
      expect(c.cloudInit).toMatchObject({ hostname: 'tpl-host', user: 'ops' });
      for (const t of [cloned, over, plain]) {
        const id = t.result!.vm as string;
        const vm = await get(id);
        expect((await s.api('DELETE', `/vms/${id}`)).status).toBe(200);
        for (const d of vm.disks) expect((await s.api('DELETE', `/disks/${d.diskId!}`)).status).toBe(200);
      }
      expect((await s.api('DELETE', `/vms/${tpl.id}/cloud-init`)).status).toBe(200);
    });

    it('create from a template refuses: not a template, unknown id, image and template together, an over-long name; v1 create still needs cpus and memory', async () => {
      const plain = ((await s.api('POST', '/vms', { name: 'tpl-plain', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      expectError(await s.api('POST', '/vms', { name: 'x1', template: plain.id }), 'VALIDATION', 400, /is not a template/);
      expectError(await s.api('POST', '/vms', { name: 'x1', template: 'nope' }), 'VM_NOT_FOUND', 404, /not found/i);
      expectError(await s.api('POST', '/vms', { name: 'x1', template: tpl.id, image: 'debian' }), 'VALIDATION', 400, /either "image" or "template"/);
      expectError(await s.api('POST', '/vms', { name: 'x'.repeat(60), template: tpl.id }), 'VALIDATION', 400, /at most 57 characters/);
      expectError(await s.api('POST', '/vms', { name: 'from-tpl', template: tpl.id }), 'NAME_TAKEN', 409, /from-tpl/);
      expectError(await s.api('POST', '/vms', { name: 'x1', memory: 64 }), 'VALIDATION', 400, /missing the field: cpus/);
      expect((await s.api('GET', '/vms')).body.vms.map((v: Vm) => v.name)).not.toContain('x1');
    });

    it('a template whose disks linked clones back onto is neither deleted nor turned back (409 DISK_HAS_CHILDREN); once they are gone, both work', async () => {
      expectError(await s.api('DELETE', `/vms/${tpl.id}`), 'DISK_HAS_CHILDREN', 409, /tpl-base is the backing file of disk from-tpl-disk0/);
      expectError(await s.api('DELETE', `/vms/${tpl.id}/template`), 'DISK_HAS_CHILDREN', 409, /from-tpl-disk0/);
      expect((await get(tpl.id)).template).toBe(true);
      const clone = ((await s.api('GET', '/vms')).body.vms as Vm[]).find((v) => v.name === 'from-tpl')!;
      expect((await s.api('DELETE', `/vms/${clone.id}`)).status).toBe(200);
      expect((await s.api('DELETE', `/disks/${clone.disks[0].diskId!}`)).status).toBe(200);
      const back = await s.api('DELETE', `/vms/${tpl.id}/template`);
      expect(back.status, JSON.stringify(back.body)).toBe(200);
      expectShape(VmEnvelope, back.body);
      expect((back.body as VmEnvelope).vm.template).toBe(false);
      expect((await s.api('POST', `/vms/${tpl.id}/start`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${tpl.id}/stop`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${tpl.id}/template`)).status).toBe(200);
      expect((await s.api('DELETE', `/vms/${tpl.id}`)).status).toBe(200);
    });
  });
}
