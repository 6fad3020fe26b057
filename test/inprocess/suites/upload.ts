/** Disk image uploads (PUT /api/disks/upload/:name) over the fake image tool; the header checks are the real ones. */
import { DiskEnvelope } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';
import { isoBytes } from './vms.js';

export function uploadSuite(): void {
  describe('disk uploads', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess({ env: { MAX_UPLOAD_MB: '1' } });
    });
    afterAll(async () => {
      await s.close();
    });
    const put = (name: string, body: Buffer, headers: Record<string, string> = {}) =>
      s.inject({ method: 'PUT', url: `/api/disks/upload/${name}`, headers: { 'content-type': 'application/octet-stream', ...headers }, payload: body });
    const diskDir = () => fs.readdirSync(path.join(s.dataDir, 'disks')).sort();

    it('a raw image is streamed in, checked and listed as a ready managed disk', async () => {
      const body = Buffer.alloc(300 * 1024, 7);
      const r = await put('uploaded', body);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(DiskEnvelope, r.body);
      const disk = (r.body as DiskEnvelope).disk;
      expect(disk).toMatchObject({ name: 'uploaded', format: 'raw', status: 'ready', size: 1, path: path.join(s.dataDir, 'disks', 'uploaded.img'), attachedTo: null });
      expect(fs.readFileSync(disk.path).equals(body)).toBe(true);
      expect(fs.statSync(disk.path).mode & 0o777).toBe(0o600);
      expect(s.images.calls.filter((c) => c.method === 'info').length).toBeGreaterThan(0);
      expect(diskDir().filter((f) => f.startsWith('.upload-'))).toEqual([]);
      expectError(await put('uploaded', body), 'NAME_TAKEN', 409, 'A disk named uploaded already exists');
    });

    it('refuses what is not a self-contained raw, qcow2 or vmdk image, and a bad name, leaving nothing', async () => {
      const before = diskDir();
      expectError(await put('cd', isoBytes()), 'IMAGE_NOT_ALLOWED', 400, 'The uploaded file is an ISO 9660 image: upload it to the ISO library (PUT /api/isos/{name})');
      // A vdi is taken (and converted), but checked first: a broken or differencing one is refused.
      const brokenVdi = vdiHeader();
      brokenVdi.writeUInt32LE(0, 0x44);
      expectError(await put('vbox', brokenVdi), 'IMAGE_NOT_ALLOWED', 400, 'The uploaded image has an unsupported vdi version (0.0)');
      const diffVdi = vdiHeader();
      diffVdi.writeUInt32LE(4, 0x4c);
      expectError(await put('vbox', diffVdi), 'IMAGE_NOT_ALLOWED', 400, /^The uploaded image is a differencing vdi \(it names a parent image\)/);
      const qed = Buffer.alloc(4096);
      qed.write('QED\0', 0, 'latin1');
      expectError(await put('qed', qed), 'IMAGE_NOT_ALLOWED', 400, /^The uploaded image is qed; raw, qcow2, vmdk, vdi and vhdx are accepted \(convert it first: qemu-img convert -f qed -O qcow2/);
      expectError(await put('..evil', Buffer.alloc(512)), 'VALIDATION', 400, /^A disk name may only contain letters/);
      expect(diskDir()).toEqual(before);
    });

    it('a vdi is converted to qcow2 through the image tool: the disk is <name>.qcow2, no temp file stays', async () => {
      const copies = s.images.calls.filter((c) => c.method === 'copy').length;
      const r = await put('vbox-ok', vdiHeader());
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(DiskEnvelope, r.body);
      const disk = (r.body as DiskEnvelope).disk;
      expect(disk).toMatchObject({ name: 'vbox-ok', format: 'qcow2', status: 'ready', path: path.join(s.dataDir, 'disks', 'vbox-ok.qcow2') });
      expect(s.images.calls.filter((c) => c.method === 'copy').length).toBe(copies + 1);
      expect(fs.readFileSync(disk.path).readUInt32BE(0)).toBe(0x514649fb); // what the tool wrote: a qcow2
      expect(diskDir().filter((f) => f.startsWith('.upload-'))).toEqual([]);
    });

    it('an upload over MAX_UPLOAD_MB is 413 PAYLOAD_TOO_LARGE, declared or not, with no file left', async () => {
      const before = diskDir();
      expectError(await put('huge', Buffer.alloc(1024 * 1024 + 1)), 'PAYLOAD_TOO_LARGE', 413, 'The disk image is larger than the limit of 1048576 bytes');
      expect(diskDir()).toEqual(before);
    });
  });
}

/** A dynamic vdi header (1 MiB, one block, none allocated) as qemu-img writes one. */
function vdiHeader(): Buffer {
  const b = Buffer.alloc(2048);
  b.write('<<< QEMU VM Virtual Disk Image >>>\n', 0, 'latin1');
  b.writeUInt32LE(0xbeda107f, 0x40);
  b.writeUInt32LE(0x00010001, 0x44);
  b.writeUInt32LE(0x180, 0x48);
  b.writeUInt32LE(1, 0x4c);
  b.writeUInt32LE(0x200, 0x154);
  b.writeUInt32LE(0x400, 0x158);
  b.writeUInt32LE(512, 0x168);
  b.writeBigUInt64LE(1n << 20n, 0x170);
  b.writeUInt32LE(1 << 20, 0x178);
  b.writeUInt32LE(1, 0x180);
  b.writeUInt32LE(0xffffffff, 0x200); // the block map: block 0 not allocated
  return b;
}
