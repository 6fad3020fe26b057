/**
 * Images (issue 12) against a real server and real qemu-img: a loopback node:http server of the
 * test serves a small qcow2 made here (with data written by qemu-io) and a SHA256SUMS list. A
 * download is listed with the right virtual size and sha256, stored as a clean qcow2; a wrong
 * checksum fails the task and leaves nothing in images/; an upload (raw) is stored as qcow2. A VM
 * made from the image gets a linked disk (its backing file is the image) grown to diskSize, which
 * a real QEMU starts on; a full copy has no backing file and the image's content; a copy that fails
 * midway (qemu-img convert on a damaged image) leaves no VM, no disk and no file. The image cannot
 * be deleted while a disk backs onto it; deleting the VM and the disk frees it.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, TestServer, waitFor } from './harness.js';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const info = async (file: string) => JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', file])).stdout);
async function same(a: string, b: string): Promise<boolean> {
  try {
    await run('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'qcow2', a, b]);
    return true;
  } catch {
    return false;
  }
}

let work: string;
let files: http.Server;
let base: string;
let server: TestServer;
const task = async (id: string): Promise<any> =>
  waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return t.status !== 'queued' && t.status !== 'running' ? t : null;
  }, 120_000, `task ${id} to end`);
const imagesDir = () => path.join(server.dataDir, 'images');
const disksDir = () => path.join(server.dataDir, 'disks');
const image = async (name: string) => (await server.api('GET', '/images')).body.images.find((i: any) => i.name === name);

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-images-'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(work, 'cloud.qcow2'), '64M']);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0xa5 32M 512k', path.join(work, 'cloud.qcow2')]);
  const good = `${sha256(path.join(work, 'cloud.qcow2'))}  cloud.qcow2\n`;
  fs.writeFileSync(path.join(work, 'SHA256SUMS'), `${'1'.repeat(64)}  other.qcow2\n${good}`);
  fs.writeFileSync(path.join(work, 'BADSUMS'), `${'0'.repeat(64)}  cloud.qcow2\n`);
  files = http.createServer((req, res) => {
    const file = path.join(work, path.basename(new URL(req.url!, 'http://x').pathname));
    if (!fs.existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': fs.statSync(file).size }).end(fs.readFileSync(file));
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  server = await new TestServer(makeDataDir()).start();
});

afterAll(async () => {
  await server?.dispose();
  await new Promise((r) => files?.close(r));
  fs.rmSync(work, { recursive: true, force: true });
});

describe('images library (real qemu-img)', () => {
  it('downloads an image verified by its SHA256SUMS entry: listed with its virtual size and sha256, a clean qcow2', async () => {
    const r = await server.api('POST', '/images', { name: 'cloud', url: `${base}/cloud.qcow2`, checksumUrl: `${base}/SHA256SUMS` });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await task(r.body.task.id);
    expect(t, JSON.stringify(t)).toMatchObject({ kind: 'image.download', status: 'succeeded', result: { image: 'cloud' }, progress: 1 });
    expect(await image('cloud')).toMatchObject({ name: 'cloud', format: 'qcow2', virtualSize: 64 * MiB, sha256: sha256(path.join(work, 'cloud.qcow2')), source: `${base}/cloud.qcow2`, usedBy: [] });
    const stored = path.join(imagesDir(), 'cloud.qcow2');
    expect(fs.readdirSync(imagesDir())).toEqual(['cloud.qcow2']);
    const i = await info(stored);
    expect(i).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB });
    expect(i['backing-filename']).toBeUndefined();
    expect(await same(path.join(work, 'cloud.qcow2'), stored)).toBe(true);
  });

  it('a wrong checksum fails the task and leaves nothing in images/', async () => {
    const r = await server.api('POST', '/images', { name: 'wrong', url: `${base}/cloud.qcow2`, checksumUrl: `${base}/BADSUMS` });
    expect(r.status).toBe(202);
    const t = await task(r.body.task.id);
    expect(t).toMatchObject({ status: 'failed', error: `sha256 mismatch: the checksum list gives ${'0'.repeat(64)}, the download has ${sha256(path.join(work, 'cloud.qcow2'))}` });
    expect(fs.readdirSync(imagesDir())).toEqual(['cloud.qcow2']);
    expect(await image('wrong')).toBeUndefined();
    const ftp = await server.api('POST', '/images', { name: 'ftp', url: 'ftp://127.0.0.1/cloud.qcow2' });
    expect(ftp).toMatchObject({ status: 400, body: { code: 'VALIDATION', error: 'url must be http:// or https://, not ftp:' } });
  });

  it('an upload (raw) is checked and stored as qcow2', async () => {
    const raw = Buffer.alloc(8 * MiB, 0x33);
    const res = await fetch(`${server.url}/api/images/upload/plain`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: raw });
    const body = (await res.json());
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body.image).toMatchObject({ name: 'plain', format: 'qcow2', virtualSize: 8 * MiB, source: 'upload', sha256: crypto.createHash('sha256').update(raw).digest('hex') });
    expect(await info(path.join(imagesDir(), 'plain.qcow2'))).toMatchObject({ format: 'qcow2', 'virtual-size': 8 * MiB });
    expect(fs.readdirSync(imagesDir()).sort()).toEqual(['cloud.qcow2', 'plain.qcow2']);
  });

  it('a VM from the image: a linked disk backing onto it, grown to diskSize, that QEMU starts on; the image is in use until the disk goes', async () => {
    const r = await server.api('POST', '/vms', { name: 'linked', cpus: 1, memory: 128, image: 'cloud', diskSize: 1 });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await task(r.body.task.id);
    expect(t, JSON.stringify(t)).toMatchObject({ kind: 'vm.create', status: 'succeeded' });
    const { vm, disk } = t.result;
    const file = path.join(disksDir(), 'linked-disk0.qcow2');
    const i = await info(file);
    expect(i).toMatchObject({ format: 'qcow2', 'virtual-size': GiB, 'backing-filename': path.join(imagesDir(), 'cloud.qcow2'), 'backing-filename-format': 'qcow2' });
    expect((await server.api('GET', `/disks/${disk}`)).body.disk).toMatchObject({ name: 'linked-disk0', size: 1, attachedTo: vm, backingFile: path.join(imagesDir(), 'cloud.qcow2') });
    expect((await image('cloud')).usedBy).toEqual([disk]);

    // A real start opens the chain (the image as the read-only backing layer).
    const started = await server.api('POST', `/vms/${vm}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect((await server.api('GET', `/vms/${vm}`)).body.vm.status).toBe('running');
    expect((await server.api('POST', `/vms/${vm}/stop`)).status).toBe(200);

    const busy = await server.api('DELETE', '/images/cloud');
    expect(busy).toMatchObject({ status: 409, body: { code: 'IMAGE_IN_USE', error: `Image cloud is the backing file of disk ${disk}; delete that disk first` } });
    expect(fs.existsSync(path.join(imagesDir(), 'cloud.qcow2'))).toBe(true);
    expect((await server.api('DELETE', `/vms/${vm}`)).status).toBe(200);
    expect((await server.api('DELETE', `/disks/${disk}`)).status).toBe(200);
    expect((await image('cloud')).usedBy).toEqual([]);
  });

  it('a full copy has no backing file, the image\'s content, and diskSize', async () => {
    const r = await server.api('POST', '/vms', { name: 'full', cpus: 1, memory: 128, image: 'cloud', diskSize: 2, linkedDisk: false });
    const t = await task(r.body.task.id);
    expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded' });
    const file = path.join(disksDir(), 'full-disk0.qcow2');
    const i = await info(file);
    expect(i).toMatchObject({ format: 'qcow2', 'virtual-size': 2 * GiB });
    expect(i['backing-filename']).toBeUndefined();
    expect(await same(path.join(imagesDir(), 'cloud.qcow2'), file)).toBe(true);
    expect((await image('cloud')).usedBy).toEqual([]);
    const small = await server.api('POST', '/vms', { name: 'x', cpus: 1, memory: 128, image: 'plain', diskSize: 1 });
    expect(small.status).toBe(202); // 8 MiB fits in 1 GB
    expect((await task(small.body.task.id)).status).toBe('succeeded');
  });

  it('a copy that fails midway (a damaged image) leaves no VM, no disk row and no file; the image can then be deleted', async () => {
    const r0 = await server.api('POST', '/images', { name: 'frail', url: `${base}/cloud.qcow2`, sha256: sha256(path.join(work, 'cloud.qcow2')) });
    expect((await task(r0.body.task.id)).status).toBe('succeeded');
    // Damage the stored image past what the server's header checks read: an L1 table offset that is
    // not cluster-aligned, which qemu-img refuses when it opens the image for the copy.
    const stored = path.join(imagesDir(), 'frail.qcow2');
    const fd = fs.openSync(stored, 'r+');
    const off = Buffer.alloc(8);
    off.writeBigUInt64BE(0x10001n);
    fs.writeSync(fd, off, 0, 8, 40);
    fs.closeSync(fd);
    const vmsBefore = (await server.api('GET', '/vms')).body.vms.length;
    const disksBefore = (await server.api('GET', '/disks')).body.disks.length;
    const filesBefore = fs.readdirSync(disksDir()).sort();
    const r = await server.api('POST', '/vms', { name: 'frail-vm', cpus: 1, memory: 128, image: 'frail', linkedDisk: false });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await task(r.body.task.id);
    // It failed in the copy, after the server had created the target file (its partial).
    expect(t, JSON.stringify(t)).toMatchObject({ status: 'failed', error: 'qemu-img convert failed (see the server log)' });
    expect((await server.api('GET', '/vms')).body.vms.length).toBe(vmsBefore);
    expect((await server.api('GET', '/disks')).body.disks.length).toBe(disksBefore);
    expect(fs.readdirSync(disksDir()).sort()).toEqual(filesBefore);
    expect((await server.api('DELETE', '/images/frail')).status).toBe(200);
    expect(fs.existsSync(stored)).toBe(false);
  });
});
