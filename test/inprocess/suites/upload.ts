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
      const vdi = Buffer.alloc(4096);
      vdi.write('<<< Oracle VM VirtualBox Disk Image >>>\n', 0, 'latin1');
      vdi.writeUInt32LE(0xbeda107f, 0x40);
      expectError(await put('vbox', vdi), 'IMAGE_NOT_ALLOWED', 400, /^The uploaded image is vdi; raw, qcow2 and vmdk are accepted \(convert it first: qemu-img convert -f vdi -O qcow2/);
      expectError(await put('..evil', Buffer.alloc(512)), 'VALIDATION', 400, /^A disk name may only contain letters/);
      expect(diskDir()).toEqual(before);
    });

    it('an upload over MAX_UPLOAD_MB is 413 PAYLOAD_TOO_LARGE, declared or not, with no file left', async () => {
      const before = diskDir();
      expectError(await put('huge', Buffer.alloc(1024 * 1024 + 1)), 'PAYLOAD_TOO_LARGE', 413, 'The disk image is larger than the limit of 1048576 bytes');
      expect(diskDir()).toEqual(before);
    });
  });
}
