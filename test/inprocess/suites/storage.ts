/** Managed disks and the ISO library, over the fake image tool. */
import { CreatedDiskEnvelope, DiskEnvelope, DiskListEnvelope, IsoEnvelope, IsoListEnvelope, MessageBody, type Disk, type VmEnvelope } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../packages/server/src/lib/errors.js';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';
import { isoBytes } from './vms.js';

export function storageSuite(): void {
  describe('disk routes', () => {
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
      await s.built.disks.idle();
      return (r.body as DiskEnvelope).disk;
    };

    it('GET /disks, POST /disks (creating, then ready), GET /disks/:id with the image info, in the v1 shape', async () => {
      expect((await s.api('GET', '/disks')).body).toEqual({ disks: [] });
      const r = await s.api('POST', '/disks', { name: 'data', size: 2, format: 'qcow2' });
      expect(r.status).toBe(201);
      expectShape(CreatedDiskEnvelope, r.body);
      const disk = (r.body as DiskEnvelope).disk;
      expect(disk).toMatchObject({ name: 'data', size: 2, format: 'qcow2', status: 'creating', path: path.join(s.dataDir, 'disks', 'data.qcow2'), attachedTo: null, error: null });
      await s.built.disks.idle();
      const got = await s.api('GET', `/disks/${disk.id}`);
      expect(got.status).toBe(200);
      expectShape(DiskEnvelope, got.body);
      expect((got.body as DiskEnvelope).disk).toMatchObject({ status: 'ready', info: { 'virtual-size': 2 * 1024 ** 3, format: 'qcow2', filename: disk.path } });
      expect(fs.statSync(disk.path).mode & 0o777).toBe(0o600);
      expect(fs.existsSync(`${disk.path}.part`)).toBe(false);
      const list = await s.api('GET', '/disks');
      expectShape(DiskListEnvelope, list.body);
      expect((list.body as DiskListEnvelope).disks.map((d) => d.name)).toEqual(['data']);
    });

    it('refuses a taken name (record or file) with 409 NAME_TAKEN, and unknown ids with 404 DISK_NOT_FOUND', async () => {
      await newDisk('twice', 'raw', 1);
      expectError(await s.api('POST', '/disks', { name: 'twice', size: 1, format: 'raw' }), 'NAME_TAKEN', 409, 'A disk named twice already exists');
      fs.writeFileSync(path.join(s.dataDir, 'disks', 'stray.img'), 'x');
      expectError(await s.api('POST', '/disks', { name: 'stray', size: 1, format: 'raw' }), 'NAME_TAKEN', 409, 'A file named stray.img already exists in the disk directory');
      expectError(await s.api('POST', '/disks', { name: 'big', size: 16385, format: 'raw' }), 'VALIDATION', 400, 'body.size must be <= 16384');
      expectError(await s.api('POST', '/disks', { name: '../etc', size: 1, format: 'raw' }), 'VALIDATION', 400, /^body\.name may only contain letters/);
      expectError(await s.api('GET', '/disks/xyz'), 'DISK_NOT_FOUND', 404, 'Disk not found: xyz');
      expectError(await s.api('DELETE', '/disks/xyz'), 'DISK_NOT_FOUND', 404, 'Disk not found: xyz');
      expectError(await s.api('GET', '/disks/6f1c1b2e-0d7e-4b8a-9b0a-3d2f1e0c9a77'), 'DISK_NOT_FOUND', 404, 'Disk not found: 6f1c1b2e-0d7e-4b8a-9b0a-3d2f1e0c9a77');
    });

    it('a failed creation marks the disk error, leaves no file, and the disk can be deleted', async () => {
      s.images.failNext('create', new Error('No space left on device'));
      const r = await s.api('POST', '/disks', { name: 'full', size: 1, format: 'vmdk' });
      expect(r.status).toBe(201);
      await s.built.disks.idle();
      const disk = ((await s.api('GET', `/disks/${(r.body as DiskEnvelope).disk.id}`)).body as DiskEnvelope).disk;
      expect(disk).toMatchObject({ status: 'error', error: 'qemu-img create failed: No space left on device' });
      expect(fs.readdirSync(path.join(s.dataDir, 'disks')).filter((f) => f.startsWith('full'))).toEqual([]);
      expect((await s.api('DELETE', `/disks/${disk.id}`)).status).toBe(200);
    });

    it('an unreadable image is 409 IMAGE_UNREADABLE (no tool detail); a slow tool keeps its 504 TOOL_TIMEOUT', async () => {
      const disk = await newDisk('odd', 'raw', 1);
      s.images.failNext('info', new Error('qemu-img: Could not open /secret: garbage'));
      const r = await s.api('GET', `/disks/${disk.id}`);
      expectError(r, 'IMAGE_UNREADABLE', 409, 'Cannot read the image of disk odd: it could not be read');
      expect(JSON.stringify(r.body)).not.toContain('secret');
      s.images.failNext('info', new AppError('TOOL_TIMEOUT', 'Reading the image took longer than 10 s and was stopped'));
      expectError(await s.api('GET', `/disks/${disk.id}`), 'TOOL_TIMEOUT', 504, 'Reading the image took longer than 10 s and was stopped');
      expect((await s.api('GET', `/disks/${disk.id}`)).status).toBe(200);
    });

    it('DELETE /disks/:id removes a ready disk and its file', async () => {
      const disk = await newDisk('bye', 'raw', 1);
      expect(fs.existsSync(disk.path)).toBe(true);
      const r = await s.api('DELETE', `/disks/${disk.id}`);
      expect(r.status).toBe(200);
      expectShape(MessageBody, r.body);
      expect(r.body).toEqual({ message: 'Disk deleted successfully' });
      expect(fs.existsSync(disk.path)).toBe(false);
      expectError(await s.api('GET', `/disks/${disk.id}`), 'DISK_NOT_FOUND', 404, `Disk not found: ${disk.id}`);
    });

    it('regression: a disk deleted while it is attached (409 DISK_IN_USE, record and file stay)', async () => {
      const disk = await newDisk('boot', 'qcow2', 4);
      const vm = ((await s.api('POST', '/vms', { name: 'owner', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      expectError(
        await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path, format: 'raw' }),
        'IMAGE_NOT_ALLOWED',
        400,
        'Disk boot is a qcow2 disk; it cannot be attached as raw',
      );
      const att = await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path });
      expect(att.status).toBe(200);
      expect((att.body as VmEnvelope).vm.disks).toMatchObject([{ path: disk.path, format: 'qcow2', diskId: disk.id }]);
      expectError(await s.api('DELETE', `/disks/${disk.id}`), 'DISK_IN_USE', 409, `Disk boot is attached to VM ${vm.id}; detach it first`);
      expect(fs.existsSync(disk.path)).toBe(true);
      expect(((await s.api('GET', `/disks/${disk.id}`)).body as DiskEnvelope).disk).toMatchObject({ status: 'ready', attachedTo: vm.id });
      expectError(await s.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath: disk.path }), 'IMAGE_NOT_ALLOWED', 400, `${disk.path} is the managed disk boot; attach it as a disk instead`);
      await s.api('POST', `/vms/${vm.id}/disks/detach`, { diskPath: disk.path });
      expect((await s.api('DELETE', `/disks/${disk.id}`)).status).toBe(200);
      expect(fs.existsSync(disk.path)).toBe(false);
    });

    it('regression: a disk deleted while it is being created (409 DISK_NOT_READY; afterwards ready and deletable)', async () => {
      const gate = s.images.hold('create');
      const r = await s.api('POST', '/disks', { name: 'slow', size: 8, format: 'qcow2' });
      const disk = (r.body as DiskEnvelope).disk;
      const partial = `${disk.path}.part`;
      try {
        expect(r.status).toBe(201);
        await gate.reached;
        expect(fs.existsSync(partial)).toBe(true);
        expectError(await s.api('DELETE', `/disks/${disk.id}`), 'DISK_NOT_READY', 409, 'Disk slow is still being created');
        expect(((await s.api('GET', `/disks/${disk.id}`)).body as DiskEnvelope).disk.status).toBe('creating');
        expect(fs.existsSync(partial)).toBe(true);
        const vm = ((await s.api('POST', '/vms', { name: 'eager', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
        fs.writeFileSync(disk.path, ''); // what an attach by path would find while qemu-img still writes elsewhere
        expectError(await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path }), 'DISK_NOT_READY', 409, 'Disk slow is creating, not ready');
        fs.rmSync(disk.path);
      } finally {
        gate.release(); // a failed assertion must not leave the creation (and the server's close) waiting
      }
      await s.built.disks.idle();
      expect(((await s.api('GET', `/disks/${disk.id}`)).body as DiskEnvelope).disk.status).toBe('ready');
      expect(fs.existsSync(partial)).toBe(false);
      expect(fs.existsSync(disk.path)).toBe(true);
      expect((await s.api('DELETE', `/disks/${disk.id}`)).status).toBe(200);
      expect(fs.existsSync(disk.path)).toBe(false);
      expect(((await s.api('GET', '/disks')).body as DiskListEnvelope).disks.some((d) => d.id === disk.id)).toBe(false);
    });

    it('regression: detaching a disk that is not attached answered with success (404 DISK_NOT_ATTACHED, nothing changes)', async () => {
      const disk = await newDisk('kept', 'raw', 1);
      const other = path.join(s.dataDir, 'disks', 'loose.img');
      fs.writeFileSync(other, Buffer.alloc(1024));
      const vm = ((await s.api('POST', '/vms', { name: 'detach', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path });
      for (const p of [other, '/nowhere/at/all.img', path.join(s.dataDir, 'disks', 'never.img')]) {
        expectError(await s.api('POST', `/vms/${vm.id}/disks/detach`, { diskPath: p }), 'DISK_NOT_ATTACHED', 404, `Disk is not attached to this VM: ${p}`);
      }
      const vm2 = ((await s.api('POST', '/vms', { name: 'detach2', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      expectError(await s.api('POST', `/vms/${vm2.id}/disks/detach`, { diskPath: disk.path }), 'DISK_NOT_ATTACHED', 404, `Disk is not attached to this VM: ${disk.path}`);
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.disks.map((d) => d.path)).toEqual([disk.path]);
    });
  });

  describe('ISO routes', () => {
    let s: InProcessServer;
    let isos: string;
    beforeAll(async () => {
      s = await startInProcess({ env: { MAX_UPLOAD_MB: '1' } });
      isos = path.join(s.dataDir, 'isos');
    });
    afterAll(async () => {
      await s.close();
    });
    const upload = (name: string, body: Buffer, headers: Record<string, string> = {}) =>
      s.inject({ method: 'PUT', url: `/api/isos/${name}`, headers: { 'content-type': 'application/octet-stream', ...headers }, payload: body });
    /** Files in the ISO library, temp files of uploads included. */
    const files = () => fs.readdirSync(isos).sort();

    it('PUT /isos/:name uploads, GET /isos lists, in the v1 shape', async () => {
      expect((await s.api('GET', '/isos')).body).toEqual({ isos: [] });
      const r = await upload('boot.iso', isoBytes());
      expect(r.status).toBe(201);
      expectShape(IsoEnvelope, r.body);
      expect((r.body as IsoEnvelope).iso).toMatchObject({ name: 'boot.iso', path: path.join(isos, 'boot.iso'), size: 64 * 1024 });
      const list = await s.api('GET', '/isos');
      expectShape(IsoListEnvelope, list.body);
      expect((list.body as IsoListEnvelope).isos.map((i) => i.name)).toEqual(['boot.iso']);
      expectError(await upload('boot.iso', isoBytes()), 'NAME_TAKEN', 409, 'An ISO named boot.iso already exists');
    });

    it('refuses bad names, non-ISO content and short bodies, leaving no file', async () => {
      expectError(await upload('notes.txt', isoBytes()), 'VALIDATION', 400, 'ISO name must be letters, digits, dot, dash or underscore, ending in .iso');
      expectError(await upload('.hidden.iso', isoBytes()), 'VALIDATION', 400, 'ISO name must be letters, digits, dot, dash or underscore, ending in .iso');
      expectError(await upload('text.iso', Buffer.from('just text')), 'VALIDATION', 400, 'The file is not an ISO 9660 or UDF image');
      expect(files()).toEqual(['boot.iso']);
      expectError(await s.api('DELETE', '/isos/none.iso'), 'FILE_NOT_FOUND', 404, 'ISO not found: none.iso');
      expectError(await s.api('DELETE', '/isos/bad%20name'), 'VALIDATION', 400, 'Invalid ISO name');
    });

    it('regression: the ISO upload size limit removed (413 PAYLOAD_TOO_LARGE over MAX_UPLOAD_BYTES, no file left)', async () => {
      const max = s.config.maxUploadBytes;
      expect(max).toBe(1024 * 1024);
      expectError(await upload('huge.iso', isoBytes(max + 1)), 'PAYLOAD_TOO_LARGE', 413, `The ISO is larger than the limit of ${max} bytes`);
      expect(files()).toEqual(['boot.iso']);
      // Exactly at the limit is accepted.
      expect((await upload('edge.iso', isoBytes(max))).status).toBe(201);
      expect((await s.api('DELETE', '/isos/edge.iso')).status).toBe(200);
      expect(files()).toEqual(['boot.iso']);
    });

    it('regression: a mounted ISO deleted (409 ISO_IN_USE, the file stays); once ejected it can be', async () => {
      const file = path.join(isos, 'boot.iso');
      const vm = ((await s.api('POST', '/vms', { name: 'cd', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      expect((await s.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath: file })).status).toBe(200);
      expectError(await s.api('DELETE', '/isos/boot.iso'), 'ISO_IN_USE', 409, 'ISO boot.iso is mounted in a VM; unmount it first');
      expect(fs.existsSync(file)).toBe(true);
      expectError(await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: file, format: 'raw' }), 'IMAGE_NOT_ALLOWED', 400, /boot\.iso/);
      // Also while the VM runs.
      await s.api('POST', `/vms/${vm.id}/start`);
      expectError(await s.api('DELETE', '/isos/boot.iso'), 'ISO_IN_USE', 409, 'ISO boot.iso is mounted in a VM; unmount it first');
      expect(fs.existsSync(file)).toBe(true);
      await s.api('POST', `/vms/${vm.id}/iso/unmount`);
      const r = await s.api('DELETE', '/isos/boot.iso');
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ message: 'ISO deleted successfully' });
      expect(fs.existsSync(file)).toBe(false);
      await s.api('POST', `/vms/${vm.id}/stop`);
    });

    it('an image outside the ISO library but under a storage root, mounted as CD, blocks attaching it as a disk (409 ISO_IN_USE)', async () => {
      const file = path.join(s.dataDir, 'disks', 'media.img');
      fs.writeFileSync(file, isoBytes());
      const a = ((await s.api('POST', '/vms', { name: 'cd-a', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      const b = ((await s.api('POST', '/vms', { name: 'cd-b', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      expect((await s.api('POST', `/vms/${a.id}/iso/mount`, { isoPath: file })).status).toBe(200);
      expectError(await s.api('POST', `/vms/${b.id}/disks/attach`, { diskPath: file, format: 'raw' }), 'ISO_IN_USE', 409, `${file} is inserted as CD media in VM cd-a; eject it first`);
    });
  });
}
