/**
 * Hardware options and templates (issue 12) with real QEMU under TCG and the test guest: the pc
 * machine with its disk on IDE and an e1000e NIC, a virtio-scsi disk on q35 (the guest names both
 * disks sda and marks them), the boot order (a bootable disk boots first by default; with the
 * CD-ROM first the guest ISO boots although the disk is bootable), and a VM made from a template
 * (the pc/IDE VM made a template: the new VM's disk a qcow2 overlay whose backing file is the
 * template's disk; it boots on the virtio bus the body asks for and writes only its overlay). One server; each VM is stopped (QMP quit) before the next starts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDiskMarker } from '../guest/index.js';
import { EventLog, serialLog, startGuestServer, TestServer, waitFor } from './harness.js';

/**
 * A raw disk whose MBR boot sector writes `TESTDISK_BOOTED` to the first serial port (16550 THR
 * at 0x3f8) and halts: proof, on the serial log, that the BIOS booted this disk.
 */
function bootSectorDisk(file: string): void {
  const code = Buffer.from([
    0xfa, // cli
    0x31, 0xc0, // xor ax, ax
    0x8e, 0xd8, // mov ds, ax
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xbe, 0x18, 0x7c, // mov si, 0x7c18 (the message)
    0xac, // lodsb
    0x84, 0xc0, // test al, al
    0x74, 0x03, // jz halt
    0xee, // out dx, al
    0xeb, 0xf8, // jmp lodsb
    0xf4, // halt: hlt
    0xeb, 0xfd, // jmp halt
    0x90, 0x90,
  ]);
  const sector = Buffer.alloc(512);
  code.copy(sector, 0);
  Buffer.from('TESTDISK_BOOTED\r\n\0', 'latin1').copy(sector, 0x18);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  const image = Buffer.alloc(1024 * 1024);
  sector.copy(image, 0);
  fs.writeFileSync(file, image, { mode: 0o600 });
}

function backingOf(file: string): string | null {
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as Record<string, unknown>;
  return (info['backing-filename'] as string | undefined) ?? null;
}

async function taskDone(server: TestServer, id: string): Promise<any> {
  return waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return t.status !== 'queued' && t.status !== 'running' ? t : null;
  }, 120_000, `task ${id} to end`);
}

describe('hardware options and templates with real QEMU and the test guest (issue 12)', () => {
  let server: TestServer;
  let events: EventLog;
  let isoPath: string;

  const newDisk = async (name: string): Promise<any> => {
    const r = await server.api('POST', '/disks', { name, size: 1, format: 'qcow2' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await taskDone(server, r.body.task.id);
    return (await server.api('GET', `/disks/${r.body.disk.id}`)).body.disk;
  };
  /** A VM with one new blank disk and the guest ISO, per `hardware`. */
  const guestVm = async (name: string, hardware: Record<string, unknown>): Promise<{ vm: any; disk: any }> => {
    const disk = await newDisk(`${name}-d`);
    const r = await server.api('POST', '/vms', { name, cpus: 1, memory: 192, ...hardware });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const vm = r.body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath })).status).toBe(200);
    return { vm, disk };
  };
  const start = async (id: string): Promise<string> => {
    const r = await server.api('POST', `/vms/${id}/start`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.command as string;
  };
  const stop = async (id: string) => expect((await server.api('POST', `/vms/${id}/stop`)).status).toBe(200);
  const serialShows = (id: string, text: string) => waitFor(() => serialLog(server.dataDir, id).includes(text), 90_000, `${text} on the serial console`);

  beforeAll(async () => {
    ({ server, events, isoPath } = await startGuestServer());
  }, 180_000);
  afterAll(async () => {
    await events?.close();
    await server?.dispose();
  });

  it('machine pc + SATA (IDE there) + e1000e: the guest boots from the IDE CD-ROM and marks its disk as sda', async () => {
    const { vm, disk } = await guestVm('pc-ide', { machine: 'pc', diskBus: 'sata', nicModel: 'e1000e' });
    const command = await start(vm.id);
    expect(command).toMatch(/-machine pc /);
    expect(command).toContain('ide-hd,id=sata-disk0,bus=ide.0,unit=0,drive=disk0,bootindex=1');
    expect(command).toContain('ide-cd,id=cd0,bus=ide.1,unit=0,drive=cd0-media,bootindex=2');
    expect(command).toContain('e1000e,id=nic0,netdev=net0');
    await serialShows(vm.id, 'TESTGUEST_DISK_WRITTEN dev=sda');
    await stop(vm.id);
    expect(await readDiskMarker(disk.path)).toBe('TESTGUEST_DISK_MARKER dev=sda');
  });

  it('q35 + virtio-scsi: one controller, a scsi-hd; the guest marks the disk as sda', async () => {
    const { vm, disk } = await guestVm('q35-scsi', { diskBus: 'scsi', nicModel: 'rtl8139' });
    const command = await start(vm.id);
    expect(command).toContain('virtio-scsi-pci,id=scsi0');
    expect(command).toContain('scsi-hd,id=scsi-disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,drive=disk0,bootindex=1');
    expect(command).toContain('rtl8139,id=nic0,netdev=net0');
    await serialShows(vm.id, 'TESTGUEST_DISK_WRITTEN dev=sda');
    await stop(vm.id);
    expect(await readDiskMarker(disk.path)).toBe('TESTGUEST_DISK_MARKER dev=sda');
  });

  it('boot order: a bootable disk boots first by default; with the CD-ROM first the guest ISO boots although the disk is bootable', async () => {
    const bootable = path.join(server.dataDir, 'disks', 'bootsector.img');
    bootSectorDisk(bootable);
    const vm = (await server.api('POST', '/vms', { name: 'boot-order', cpus: 1, memory: 192 })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: bootable, format: 'raw' })).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath })).status).toBe(200);

    await start(vm.id);
    await serialShows(vm.id, 'TESTDISK_BOOTED');
    await stop(vm.id);

    const put = await server.api('PUT', `/vms/${vm.id}/hardware`, { bootOrder: ['cdrom', 'disk'] });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const command = await start(vm.id);
    expect(command).toContain('ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=1');
    expect(command).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=2');
    await serialShows(vm.id, 'TESTGUEST_READY');
    expect(serialLog(server.dataDir, vm.id)).not.toContain('TESTDISK_BOOTED');
    await stop(vm.id);
  });

  it('a VM from a template (the pc/IDE VM above): a linked clone whose disk backs onto the template\'s disk; with the body\'s virtio bus it boots and marks only its overlay, as vda', async () => {
    const tpl = ((await server.api('GET', '/vms')).body.vms as any[]).find((v) => v.name === 'pc-ide');
    const base = (await server.api('GET', `/disks/${tpl.disks[0].diskId}`)).body.disk;
    const made = await server.api('POST', `/vms/${tpl.id}/template`);
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(made.body.vm.template).toBe(true);
    const refused = await server.api('POST', `/vms/${tpl.id}/start`);
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: 'VM_IS_TEMPLATE' });

    const r = await server.api('POST', '/vms', { name: 'from-golden', template: tpl.id, machine: 'q35', diskBus: 'virtio' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const task = await taskDone(server, r.body.task.id);
    expect(task).toMatchObject({ kind: 'vm.create', status: 'succeeded', error: null });
    const vm = (await server.api('GET', `/vms/${task.result.vm}`)).body.vm;
    expect(vm).toMatchObject({ template: false, cpus: 1, memory: 192, iso: isoPath, machine: 'q35', diskBus: 'virtio', nicModel: 'e1000e' });
    expect(vm.mac).not.toBe(tpl.mac);
    expect(vm.vnc_port).not.toBe(tpl.vnc_port);
    const child = (await server.api('GET', `/disks/${vm.disks[0].diskId}`)).body.disk;
    expect(backingOf(child.path)).toBe(base.path);

    await start(vm.id);
    await serialShows(vm.id, 'TESTGUEST_DISK_WRITTEN dev=vda');
    await stop(vm.id);
    expect(await readDiskMarker(child.path)).toBe('TESTGUEST_DISK_MARKER dev=vda');
    expect(await readDiskMarker(base.path)).toBe('TESTGUEST_DISK_MARKER dev=sda'); // the template's disk is unchanged

    const del = await server.api('DELETE', `/vms/${tpl.id}`);
    expect({ status: del.status, code: del.body.code }).toEqual({ status: 409, code: 'DISK_HAS_CHILDREN' });
  });
});
