/**
 * Images (issue 12) over the fake image tool: the library's routes and every refusal, downloads
 * from a loopback node:http server of the test (checksum lists in GNU and BSD form), uploads, and
 * new VMs from an image (linked and full), with a failure midway leaving nothing.
 */
import { ImageCatalogueEnvelope, ImageEnvelope, ImageListEnvelope, TaskEnvelope, VmEnvelope, type Disk, type Image, type Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const GiB = 1024 ** 3;

/** A qcow2 header (what the server's header checks read), optionally naming a backing file (and its format). */
function qcow2(gb: number, backing?: string, backingFormat?: string): Buffer {
  const b = Buffer.alloc(64 * 1024);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(3, 4);
  b.writeUInt32BE(16, 20);
  b.writeBigUInt64BE(BigInt(gb) * BigInt(GiB), 24);
  b.writeUInt32BE(104, 100);
  if (backing) {
    const name = Buffer.from(backing);
    b.writeBigUInt64BE(1024n, 8);
    b.writeUInt32BE(name.length, 16);
    name.copy(b, 1024);
  }
  if (backingFormat) {
    // The backing format header extension, right after the 104-byte header; then the end marker (zeros).
    b.writeUInt32BE(0xe2792aca, 104);
    b.writeUInt32BE(backingFormat.length, 108);
    b.write(backingFormat, 112, 'latin1');
  }
  return b;
}

const sha = (algo: string, b: Buffer) => crypto.createHash(algo).update(b).digest('hex');

export function imagesSuite(): void {
  describe('images library and new VMs from an image', () => {
    let s: InProcessServer;
    let files: http.Server;
    let base: string;
    const served = new Map<string, Buffer>();
    const imagesDir = () => path.join(s.dataDir, 'images');
    const listing = () => fs.readdirSync(imagesDir()).sort();
    const finished = async (task: Task): Promise<Task> => {
      await s.built.tasks.idle();
      return ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
    };
    const upload = (name: string, body: Buffer) =>
      s.inject<any>({ method: 'PUT', url: `/api/images/upload/${name}`, headers: { 'content-type': 'application/octet-stream' }, payload: body });
    const downloading = async (body: Record<string, unknown>): Promise<Task> => {
      const r = await s.api('POST', '/images', body);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(TaskEnvelope, r.body);
      return (r.body as TaskEnvelope).task;
    };
    const image = async (name: string): Promise<Image | undefined> => ((await s.api('GET', '/images')).body as ImageListEnvelope).images.find((i) => i.name === name);
    const fromImage = async (body: Record<string, unknown>): Promise<Task> => {
      const r = await s.api('POST', '/vms', { cpus: 1, memory: 256, ...body });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(TaskEnvelope, r.body);
      return (r.body as TaskEnvelope).task;
    };

    beforeAll(async () => {
      s = await startInProcess();
      files = http.createServer((req, res) => {
        const body = served.get((req.url ?? '').slice(1));
        if (!body) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': body.length }).end(body);
      });
      await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((r) => files.close(r));
      await s.close();
    });

    it('lists nothing at first, and serves the catalogue (Debian, Ubuntu, Fedora, Alpine)', async () => {
      const list = await s.api('GET', '/images');
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ images: [] });
      const cat = await s.api('GET', '/images/catalogue');
      expect(cat.status).toBe(200);
      expectShape(ImageCatalogueEnvelope, cat.body);
      expect((cat.body as ImageCatalogueEnvelope).catalogue.map((e) => e.os)).toEqual(['debian', 'ubuntu', 'fedora', 'alpine']);
    });

    it('uploads an image: checked, converted to qcow2, listed with its sha256; refusals leave nothing', async () => {
      const body = qcow2(1);
      const r = await upload('up', body);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(ImageEnvelope, r.body);
      expect((r.body as ImageEnvelope).image).toMatchObject({ name: 'up', format: 'qcow2', sha256: sha('sha256', body), source: 'upload', usedBy: [] });
      expect(listing()).toEqual(['up.qcow2']);
      expect(fs.statSync(path.join(imagesDir(), 'up.qcow2')).mode & 0o777).toBe(0o600);
      expectError(await upload('up', body), 'NAME_TAKEN', 409, 'An image named up already exists');
      expectError(await upload('.hidden', body), 'VALIDATION', 400, /image_name/);
      const child = await upload('child', qcow2(1, '/etc/passwd'));
      expectError(child, 'IMAGE_NOT_ALLOWED', 400, /^The uploaded image has a backing file/);
      expect(listing()).toEqual(['up.qcow2']);
    });

    it('downloads with the checksum list (GNU sha256 and BSD sha512 forms) or a sha256', async () => {
      const a = qcow2(1);
      const b = Buffer.concat([qcow2(1), Buffer.alloc(512, 7)]);
      served.set('dir/a.qcow2', a);
      served.set('dir/SHA256SUMS', Buffer.from(`${sha('sha256', Buffer.from('x'))}  other.qcow2\n${sha('sha256', a)} *a.qcow2\n`));
      served.set('b.img', b);
      served.set('CHECKSUM', Buffer.from(`# b.img: ${b.length} bytes\nSHA512 (b.img) = ${sha('sha512', b)}\n`));
      const t1 = await finished(await downloading({ name: 'a', url: `${base}/dir/a.qcow2`, checksumUrl: `${base}/dir/SHA256SUMS` }));
      expect(t1, JSON.stringify(t1)).toMatchObject({ kind: 'image.download', status: 'succeeded', result: { image: 'a' } });
      expect(await image('a')).toMatchObject({ name: 'a', sha256: sha('sha256', a), source: `${base}/dir/a.qcow2`, format: 'qcow2' });
      const t2 = await finished(await downloading({ name: 'b', url: `${base}/b.img`, checksumUrl: `${base}/CHECKSUM`, format: 'qcow2' }));
      expect(t2, JSON.stringify(t2)).toMatchObject({ status: 'succeeded' });
      const t3 = await finished(await downloading({ name: 'c', url: `${base}/b.img`, sha256: sha('sha256', b).toUpperCase() }));
      expect(t3.status).toBe('succeeded');
      expect(listing()).toEqual(['a.qcow2', 'b.qcow2', 'c.qcow2', 'up.qcow2']);
      expectError(await s.api('POST', '/images', { name: 'a', url: `${base}/b.img` }), 'NAME_TAKEN', 409, 'An image named a already exists');
    });

    it('refuses a non-http URL or checksum URL at once; a mismatch or an unlisted file fails the task, keeping nothing', async () => {
      expectError(await s.api('POST', '/images', { name: 'x', url: 'file:///etc/passwd' }), 'VALIDATION', 400, 'url must be http:// or https://, not file:');
      expectError(await s.api('POST', '/images', { name: 'x', url: 'not a url' }), 'VALIDATION', 400, 'url must be an absolute http:// or https:// URL');
      expectError(await s.api('POST', '/images', { name: 'x', url: `${base}/b.img`, checksumUrl: 'ftp://127.0.0.1/SUMS' }), 'VALIDATION', 400, 'checksumUrl must be http:// or https://, not ftp:');
      expectError(await s.api('POST', '/images', { name: '../x', url: `${base}/b.img` }), 'VALIDATION', 400, /name/);
      const before = listing();
      served.set('WRONG', Buffer.from(`${'0'.repeat(128)}  b.img\n`));
      const wrong = await finished(await downloading({ name: 'w', url: `${base}/b.img`, checksumUrl: `${base}/WRONG` }));
      expect(wrong).toMatchObject({ status: 'failed', error: expect.stringMatching(/^sha512 mismatch: the checksum list gives 0{128}, the download has [0-9a-f]{128}$/) });
      const bad = await finished(await downloading({ name: 'w', url: `${base}/b.img`, sha256: '1'.repeat(64) }));
      expect(bad.error).toBe(`sha256 mismatch: expected ${'1'.repeat(64)} got ${sha('sha256', served.get('b.img')!)}`);
      const unlisted = await finished(await downloading({ name: 'w', url: `${base}/dir/a.qcow2`, checksumUrl: `${base}/WRONG` }));
      expect(unlisted.error).toBe('The checksum list does not name a.qcow2');
      const claimed = await finished(await downloading({ name: 'w', url: `${base}/b.img`, format: 'raw' }));
      expect(claimed.error).toBe('The image was said to be raw, but its header says qcow2');
      expect(listing()).toEqual(before);
      expect(await image('w')).toBeUndefined();
    });

    it('makes a VM from an image: a linked disk <name>-disk0 backing onto it, which then cannot be deleted', async () => {
      // networks (issue 11): the first NIC's network is checked before the task, and given to the VM
      expectError(await s.api('POST', '/vms', { cpus: 1, memory: 256, name: 'web', image: 'up', network: 'nowhere' }), 'NETWORK_NOT_FOUND', 404, 'Network not found: nowhere');
      const net = await s.api('POST', '/networks', { name: 'imgnet', type: 'nat' });
      expect(net.status).toBe(201);
      const task = await fromImage({ name: 'web', image: 'up', diskSize: 3, network: 'imgnet' });
      expect(task).toMatchObject({ kind: 'vm.create', target: { vm: null, disk: null } });
      const done = await finished(task);
      expect(done, JSON.stringify(done)).toMatchObject({ status: 'succeeded' });
      const { vm: vmId, disk: diskId } = done.result as { vm: string; disk: string };
      expect(done.target).toEqual({ vm: vmId, disk: diskId });
      const vm = ((await s.api('GET', `/vms/${vmId}`)).body as VmEnvelope).vm;
      const file = path.join(s.dataDir, 'disks', 'web-disk0.qcow2');
      expect(vm).toMatchObject({ name: 'web', cpus: 1, memory: 256, disks: [{ path: file, format: 'qcow2' }] });
      expect(vm.nics).toMatchObject([{ network: net.body.id, slot: 0, mac: vm.mac, ip: '192.168.101.2' }]); // networks (issue 11)
      const disk = (await s.api('GET', `/disks/${diskId}`)).body.disk as Disk;
      expect(disk).toMatchObject({ name: 'web-disk0', size: 3, format: 'qcow2', attachedTo: vmId, backingFile: path.join(imagesDir(), 'up.qcow2') });
      expect(s.images.calls.filter((c) => c.method === 'overlay').at(-1)?.arg).toBe(`${file}.part`);
      expect(s.images.calls.filter((c) => c.method === 'resize').at(-1)?.arg).toBe(`${file}.part`);
      expect((await image('up'))?.usedBy).toEqual([diskId]);

      const inUse = await s.api('DELETE', '/images/up');
      expectError(inUse, 'IMAGE_IN_USE', 409, `Image up is the backing file of disk ${diskId}; delete that disk first`);
      expect(listing()).toContain('up.qcow2');
      // Deleting the VM alone keeps the disk (and so the image's use); deleting the disk frees it.
      expect((await s.api('DELETE', `/vms/${vmId}`)).status).toBe(200);
      expectError(await s.api('DELETE', '/images/up'), 'IMAGE_IN_USE', 409, /^Image up is the backing file of disk/);
      expect((await s.api('DELETE', `/disks/${diskId}`)).status).toBe(200);
      const del = await s.api('DELETE', '/images/up');
      expect(del.status, JSON.stringify(del.body)).toBe(200);
      expect(del.body).toEqual({ message: 'Image deleted successfully' });
      expect(listing()).not.toContain('up.qcow2');
      expectError(await s.api('DELETE', '/images/up'), 'IMAGE_NOT_FOUND', 404, 'Image not found: up');
    });

    it('with linkedDisk false the disk is a full copy (no backing file), the image size by default', async () => {
      const done = await finished(await fromImage({ name: 'full', image: 'a', linkedDisk: false }));
      expect(done, JSON.stringify(done)).toMatchObject({ status: 'succeeded' });
      const disk = (await s.api('GET', `/disks/${(done.result as { disk: string }).disk}`)).body.disk as Disk;
      expect(disk).toMatchObject({ name: 'full-disk0', size: 1, backingFile: null });
      expect(s.images.calls.filter((c) => c.method === 'copy').at(-1)?.arg).toBe(path.join(imagesDir(), 'a.qcow2'));
      expect((await image('a'))?.usedBy).toEqual([]);
    });

    it('checks everything before making anything: unknown image, diskSize below the image, names, cloudInit, hardware', async () => {
      const vmsBefore = (await s.api('GET', '/vms')).body.vms.length;
      const disksBefore = fs.readdirSync(path.join(s.dataDir, 'disks')).sort();
      expectError(await s.api('POST', '/vms', { name: 'n1', cpus: 1, memory: 256, image: 'nope' }), 'IMAGE_NOT_FOUND', 404, 'Image not found: nope');
      // An image of 3 GiB (the fake tool's size for the upload's temp file).
      const gate = s.images.hold('info');
      const pending = upload('big', qcow2(3));
      await gate.reached;
      const tmp = s.images.calls.filter((c) => c.method === 'info').at(-1)!.arg;
      (s.images as any).sizes.set(tmp, 3 * GiB);
      gate.release();
      expect((await pending).status).toBe(201);
      expect((await image('big'))?.virtualSize).toBe(3 * GiB);
      expectError(
        await s.api('POST', '/vms', { name: 'n1', cpus: 1, memory: 256, image: 'big', diskSize: 2 }),
        'VALIDATION',
        400,
        `diskSize 2 GB is smaller than the image big (${3 * GiB} bytes, 3 GB): a disk is never smaller than its image`,
      );
      expectError(await s.api('POST', '/vms', { name: 'full', cpus: 1, memory: 256, image: 'big' }), 'NAME_TAKEN', 409, 'A VM named full already exists');
      expectError(await s.api('POST', '/vms', { name: 'n1', image: 'big' }), 'VALIDATION', 400, 'body is missing the field: cpus');
      expectError(await s.api('POST', '/vms', { name: 'n1', cpus: 1, memory: 256, image: 'big', secureBoot: true }), 'VALIDATION', 400, /Secure Boot needs UEFI/);
      expectError(
        await s.api('POST', '/vms', { name: 'n1', cpus: 1, memory: 256, image: 'big', cloudInit: { hostname: 'n1', userData: '#cloud-config\n- a list\n' } }),
        'VALIDATION',
        400,
        'userData line 2: the document is a list; it must be a mapping (key: value lines)',
      ); // cloud-init (issue 12): checked before anything is made
      fs.writeFileSync(path.join(s.dataDir, 'disks', 'n2-disk0.qcow2'), 'x');
      expectError(await s.api('POST', '/vms', { name: 'n2', cpus: 1, memory: 256, image: 'big' }), 'NAME_TAKEN', 409, 'A file named n2-disk0.qcow2 already exists in the disk directory');
      fs.rmSync(path.join(s.dataDir, 'disks', 'n2-disk0.qcow2'));
      expect((await s.api('GET', '/vms')).body.vms.length).toBe(vmsBefore);
      expect(fs.readdirSync(path.join(s.dataDir, 'disks')).sort()).toEqual(disksBefore);
    });

    it('a failure midway (the grow) removes everything the task made: no VM, no disk row, no file', async () => {
      const vmsBefore = (await s.api('GET', '/vms')).body.vms.length;
      const disksBefore = (await s.api('GET', '/disks')).body.disks.length;
      const filesBefore = fs.readdirSync(path.join(s.dataDir, 'disks')).sort();
      s.images.failNext('resize', new Error('qemu-img resize failed (see the server log)'));
      const done = await finished(await fromImage({ name: 'broken', image: 'big', diskSize: 8 }));
      expect(done).toMatchObject({ status: 'failed', error: 'qemu-img resize failed (see the server log)' });
      expect(s.images.calls.filter((c) => c.method === 'overlay').at(-1)?.arg).toMatch(/broken-disk0\.qcow2\.part$/);
      expect((await s.api('GET', '/vms')).body.vms.length).toBe(vmsBefore);
      expect((await s.api('GET', '/disks')).body.disks.length).toBe(disksBefore);
      expect(fs.readdirSync(path.join(s.dataDir, 'disks')).sort()).toEqual(filesBefore);
      expect((await image('big'))?.usedBy).toEqual([]);
      // The name is free again.
      expect((await finished(await fromImage({ name: 'broken', image: 'big' }))).status).toBe('succeeded');
    });

    it('a file of the library is never a disk or a medium a request names, nor another image\'s backing file', async () => {
      const vm = (await s.api('POST', '/vms', { name: 'plain', cpus: 1, memory: 256 })).body.vm;
      const file = path.join(imagesDir(), 'a.qcow2');
      expectError(await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: file, format: 'qcow2' }), 'IMAGE_NOT_ALLOWED', 400, /is in the images library/);
      expectError(await s.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath: file }), 'IMAGE_NOT_ALLOWED', 400, /is in the images library/);
      // An external qcow2 naming the image as its backing file (not made from it): refused at attach.
      const root = path.join(s.dataDir, 'disks');
      fs.writeFileSync(path.join(root, 'sneaky.qcow2'), qcow2(1, file, 'qcow2'));
      expectError(await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: path.join(root, 'sneaky.qcow2'), format: 'qcow2' }), 'IMAGE_NOT_ALLOWED', 400, /an image of the library, as a backing file/);
      fs.rmSync(path.join(root, 'sneaky.qcow2'));
    });
  });
}
