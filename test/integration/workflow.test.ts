/**
 * The spec's whole workflow against a real server and a real guest: the guest boots from the
 * mounted ISO, writes a marker to the attached disk (read back on the host after stop), its VNC
 * banner arrives through /api/vnc/{id}, and the ISO is changed live.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISK_MARKER, READY_MARKER, readDiskMarker } from '../guest/index.js';
import { EventLog, TestServer, startGuestServer, qemuPidsOf, serialLog, vncBanner, waitFor } from './harness.js';

let server: TestServer;
let events: EventLog;
let isoPath: string;
let vmId: string;
let diskPath: string;
let diskId: string;

beforeAll(async () => {
  ({ server, events, isoPath } = await startGuestServer());
});

afterAll(async () => {
  await events?.close();
  await server?.dispose();
});

describe('v1 workflow on a real guest', () => {
  it('1. creates a VM: stopped, with a VNC port from 5900 up', async () => {
    const r = await server.api('POST', '/vms', { name: 'ubuntu-server', cpus: 1, memory: 256 });
    expect(r.status).toBe(201);
    expect(r.body.vm).toMatchObject({ name: 'ubuntu-server', cpus: 1, memory: 256, status: 'stopped', disks: [], iso: null });
    expect(r.body.vm.vnc_port).toBeGreaterThanOrEqual(5900);
    expect(Date.parse(r.body.vm.createdAt)).not.toBeNaN();
    vmId = r.body.vm.id;
    const list = await server.api('GET', '/vms');
    expect(list.body.vms.map((v: any) => v.id)).toEqual([vmId]);
  });

  it('2. creates a disk: listed at once as creating, then ready with createdAtCompleted', async () => {
    const r = await server.api('POST', '/disks', { name: 'ubuntu-disk', size: 2, format: 'qcow2' });
    expect(r.status).toBe(201);
    expect(r.body.disk).toMatchObject({ name: 'ubuntu-disk', size: 2, format: 'qcow2', status: 'creating', createdAtCompleted: null });
    diskId = r.body.disk.id;
    diskPath = r.body.disk.path;
    expect(diskPath).toBe(path.join(fs.realpathSync(server.dataDir), 'disks', 'ubuntu-disk.qcow2'));
    const ready = await waitFor(async () => {
      const d = (await server.api('GET', `/disks/${diskId}`)).body.disk;
      return d.status === 'ready' && d;
    }, 10_000, 'disk ready');
    expect(Date.parse(ready.createdAtCompleted)).toBeGreaterThanOrEqual(Date.parse(ready.createdAt));
    expect(ready.info).toMatchObject({ 'virtual-size': 2 * 1024 ** 3, format: 'qcow2', filename: diskPath });
    expect(ready.info['actual-size']).toBeGreaterThan(0);
  });

  it('3. attaches the disk while stopped', async () => {
    const r = await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath });
    expect(r.status).toBe(200);
    expect(r.body.vm.disks).toHaveLength(1);
    expect(r.body.vm.disks[0]).toMatchObject({ path: diskPath, format: 'qcow2', diskId });
    const disk = (await server.api('GET', `/disks/${diskId}`)).body.disk;
    expect(disk.attachedTo).toBe(vmId);
    const del = await server.api('DELETE', `/disks/${diskId}`);
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ code: 'DISK_IN_USE' });
    expect(typeof del.body.error).toBe('string');
    expect(Date.parse(del.body.timestamp)).not.toBeNaN();
  });

  it('4. mounts the ISO from the library', async () => {
    const isos = await server.api('GET', '/isos');
    expect(isos.body.isos).toEqual([
      expect.objectContaining({ name: 'testguest.iso', path: isoPath, size: fs.statSync(isoPath).size }),
    ]);
    const r = await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath });
    expect(r.status).toBe(200);
    expect(r.body.vm.iso).toBe(fs.realpathSync(isoPath));
  });

  it('5. starts: answers once QMP says running, with the exact command line', async () => {
    const r = await server.api('POST', `/vms/${vmId}/start`);
    expect(r.status).toBe(200);
    expect(r.body.vm.status).toBe('running');
    expect(r.body.command).toMatch(/^qemu-system-x86_64 /);
    expect(r.body.command).toContain(`-uuid ${vmId}`);
    expect(r.body.command).toContain(`-vnc unix:${path.join(server.dataDir, 'run', vmId, 'qemu', 'vnc.sock')}`);
    expect(r.body.vm.lastCommand).toBe(r.body.command);
    const pids = qemuPidsOf(server.dataDir);
    expect(pids).toEqual([r.body.vm.pid]);
    await waitFor(() => events.statusesOf(vmId).includes('running'), 2000, 'running event');
    const seen = events.statusesOf(vmId);
    expect(seen.indexOf('starting')).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf('starting')).toBeLessThan(seen.lastIndexOf('running'));
  });

  it('6. the guest boots from the ISO and writes its marker to the disk', async () => {
    await waitFor(() => serialLog(server.dataDir, vmId).includes(READY_MARKER), 90_000, 'guest READY on serial');
    expect(serialLog(server.dataDir, vmId)).toContain('TESTGUEST_DISK_WRITTEN dev=vda');
  });

  it('7. the VNC banner arrives through /api/vnc/{id}', async () => {
    const banner = await vncBanner(server.url, vmId);
    expect(banner).toMatch(/^RFB 003\.00\d\n/);
  });

  it('8. ejects and re-inserts the ISO live over QMP', async () => {
    const out = await server.api('POST', `/vms/${vmId}/iso/unmount`);
    expect(out.status).toBe(200);
    expect(out.body.vm.iso).toBeNull();
    const back = await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath });
    expect(back.status).toBe(200);
    expect(back.body.vm.iso).toBe(fs.realpathSync(isoPath));
  });

  it('9. refuses to change resources or disks while running', async () => {
    const res = await server.api('PATCH', `/vms/${vmId}/resources`, { cpus: 2 });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('VM_NOT_STOPPED');
    const det = await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath });
    expect(det.status).toBe(409);
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm.cpus).toBe(1);
  });

  it('10. stops: a power-off that returns once QEMU is gone', async () => {
    const r = await server.api('POST', `/vms/${vmId}/stop`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ message: 'VM stopped successfully' });
    expect(qemuPidsOf(server.dataDir)).toEqual([]);
    const vm = (await server.api('GET', `/vms/${vmId}`)).body.vm;
    expect(vm).toMatchObject({ status: 'stopped', pid: null });
    const marker = await readDiskMarker(diskPath);
    expect(marker).toBe(`${DISK_MARKER} dev=vda`);
  });

  it('11. changes resources while stopped (either field alone)', async () => {
    const r = await server.api('PATCH', `/vms/${vmId}/resources`, { memory: 320 });
    expect(r.status).toBe(200);
    expect(r.body.vm).toMatchObject({ cpus: 1, memory: 320 });
    const r2 = await server.api('PATCH', `/vms/${vmId}/resources`, { cpus: 2 });
    expect(r2.body.vm).toMatchObject({ cpus: 2, memory: 320 });
  });

  it('12. unmounts, detaches, deletes the disk and the VM', async () => {
    expect((await server.api('POST', `/vms/${vmId}/iso/unmount`)).body.vm.iso).toBeNull();
    const det = await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath });
    expect(det.status).toBe(200);
    expect(det.body.vm.disks).toEqual([]);
    expect((await server.api('DELETE', `/disks/${diskId}`)).body).toEqual({ message: 'Disk deleted successfully' });
    expect(fs.existsSync(diskPath)).toBe(false);
    expect((await server.api('DELETE', `/vms/${vmId}`)).body).toEqual({ message: 'VM deleted successfully' });
    expect((await server.api('GET', `/vms/${vmId}`)).status).toBe(404);
    expect((await server.api('GET', '/vms')).body.vms).toEqual([]);
    const types = events.events.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['vm.created', 'disk.created', 'disk.updated', 'vm.deleted', 'disk.deleted']));
  });
});
