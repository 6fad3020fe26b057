/**
 * Disk import and convert (issue 10) against a real server, real qemu-img and qemu-nbd: images are
 * served by a loopback node:http server in the test. A qcow2 and a raw image (behind redirects)
 * are imported and converted to qcow2 with their content intact; a wrong sha256 and a qcow2 with a
 * backing file fail and leave nothing; an .ova made here (tar of an OVF text and two vmdk disks
 * made by qemu-img) becomes its disks, and so does one whose vmdk has its header in a footer
 * (VMware's layout); a vdi and a vhdx are converted to qcow2; a server killed in the middle of a slow download leaves a
 * failed "interrupted" task and nothing else. Convert: qcow2 → raw and raw → vmdk, compared equal.
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
import { vmdkWithFooter } from '../kit/images.mjs';
import { makeDataDir, TestServer, waitFor } from './harness.js';

const run = promisify(execFile);
const img = (work: string, ...args: string[]) => run('qemu-img', args, { cwd: work });
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
async function taskDone(server: TestServer, id: string, timeoutMs = 120_000): Promise<any> {
  return waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return t.status !== 'queued' && t.status !== 'running' ? t : null;
  }, timeoutMs, `task ${id} to end`);
}
/** `qemu-img compare` of two images (exit 0: the guest sees the same bytes). */
async function same(a: string, fa: string, b: string, fb: string): Promise<boolean> {
  try {
    await run('qemu-img', ['compare', '-q', '-f', fa, '-F', fb, a, b]);
    return true;
  } catch {
    return false;
  }
}
const formatOf = async (file: string) => JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', file])).stdout).format as string;

let work: string;
let files: http.Server;
let base: string;
/** Open trickling responses (ended when the test is done). */
const trickles = new Set<http.ServerResponse>();

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-import-'));
  // /f/<file>: the file; /r/<n>/<file>: n redirects first; /slow/<file>: a few bytes every 100 ms.
  files = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] === 'r') {
      const n = Number(parts[1]);
      res.writeHead(302, { location: n > 1 ? `/r/${n - 1}/${parts[2]}` : `/f/${parts[2]}` }).end();
      return;
    }
    const file = path.join(work, path.basename(parts[1] ?? ''));
    if (!fs.existsSync(file)) return void res.writeHead(404).end();
    const size = fs.statSync(file).size;
    res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
    if (parts[0] === 'slow') {
      trickles.add(res);
      const fd = fs.openSync(file, 'r');
      let pos = 0;
      const timer = setInterval(() => {
        const b = Buffer.alloc(4096);
        const n = fs.readSync(fd, b, 0, b.length, pos);
        pos += n;
        res.write(b.subarray(0, n));
        if (pos >= size) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      res.on('close', () => {
        clearInterval(timer);
        fs.closeSync(fd);
        trickles.delete(res);
      });
      return;
    }
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const r of trickles) r.destroy();
  await new Promise((r) => files.close(r));
  fs.rmSync(work, { recursive: true, force: true });
});

describe('disk import and convert', () => {
  let server: TestServer;
  const diskDir = () => fs.readdirSync(path.join(server.dataDir, 'disks')).sort();
  const imported = async (body: Record<string, unknown>) => {
    const r = await server.api('POST', '/disks/import', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.task).toMatchObject({ kind: 'disk.import', status: expect.stringMatching(/^(queued|running)$/) });
    return taskDone(server, r.body.task.id);
  };
  const disk = async (id: string) => (await server.api('GET', `/disks/${id}`)).body.disk;

  beforeAll(async () => {
    server = await new TestServer(makeDataDir()).start();
    await img(work, 'create', '-q', '-f', 'qcow2', 'q.qcow2', '2G');
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0x6b 1G 3M', path.join(work, 'q.qcow2')]);
    fs.writeFileSync(path.join(work, 'r.raw'), crypto.randomBytes(3 << 20));
  });
  afterAll(async () => {
    await server?.dispose();
  });

  let qcow2Disk: any;
  let rawDisk: any;

  it('imports a qcow2 image as qcow2 with the same content, and a raw one (behind 5 redirects, sha256 checked) converted to qcow2', async () => {
    const t = await imported({ name: 'imp-q', url: `${base}/f/q.qcow2` });
    expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded', progress: 1 });
    qcow2Disk = await disk(t.result.disk);
    expect(qcow2Disk).toMatchObject({ name: 'imp-q', format: 'qcow2', size: 2, status: 'ready', path: path.join(server.dataDir, 'disks', 'imp-q.qcow2'), backingFile: null });
    expect(t.target.disk).toBe(qcow2Disk.id);
    expect(t.bytesTotal).toBe(t.bytesDone);
    expect(await formatOf(qcow2Disk.path)).toBe('qcow2');
    expect(await same(path.join(work, 'q.qcow2'), 'qcow2', qcow2Disk.path, 'qcow2')).toBe(true);

    const r = await imported({ name: 'imp-r', url: `${base}/r/5/r.raw`, sha256: sha256(path.join(work, 'r.raw')).toUpperCase() });
    expect(r, JSON.stringify(r)).toMatchObject({ status: 'succeeded', progress: 1 });
    rawDisk = await disk(r.result.disk);
    expect(rawDisk).toMatchObject({ name: 'imp-r', format: 'qcow2', size: 1, path: path.join(server.dataDir, 'disks', 'imp-r.qcow2') });
    expect(await formatOf(rawDisk.path)).toBe('qcow2');
    expect(await same(path.join(work, 'r.raw'), 'raw', rawDisk.path, 'qcow2')).toBe(true);
    // The download's bytes (Content-Length) then the conversion's.
    expect(r.bytesTotal).toBe((3 << 20) + (3 << 20));
    expect(diskDir()).toEqual(['imp-q.qcow2', 'imp-r.qcow2']);
  }, 120_000);

  it('fails a wrong sha256, a qcow2 with a backing file, six redirects and a 404, leaving nothing', async () => {
    await img(work, 'create', '-q', '-f', 'qcow2', '-b', path.join(work, 'r.raw'), '-F', 'raw', 'child.qcow2');
    const before = diskDir();
    const disksBefore = (await server.api('GET', '/disks')).body.disks;
    const expected = 'ab'.repeat(32);
    const bad = await imported({ name: 'imp-bad', url: `${base}/f/r.raw`, sha256: expected });
    expect(bad).toMatchObject({ status: 'failed', error: `sha256 mismatch: expected ${expected} got ${sha256(path.join(work, 'r.raw'))}` });
    const child = await imported({ name: 'imp-child', url: `${base}/f/child.qcow2` });
    expect(child).toMatchObject({ status: 'failed', error: expect.stringMatching(/^The downloaded image has a backing file/) });
    const loop = await imported({ name: 'imp-loop', url: `${base}/r/6/r.raw` });
    expect(loop).toMatchObject({ status: 'failed', error: 'The download was redirected more than 5 times' });
    const missing = await imported({ name: 'imp-404', url: `${base}/f/nothing.img` });
    expect(missing).toMatchObject({ status: 'failed', error: expect.stringMatching(/answered 404/) });
    expect(diskDir()).toEqual(before);
    expect((await server.api('GET', '/disks')).body.disks).toEqual(disksBefore);
  }, 120_000);

  it('imports an .ova (tar of an OVF descriptor and two vmdk disks) as <name>-disk0 and <name>-disk1', async () => {
    await img(work, 'create', '-q', '-f', 'vmdk', 'sys.vmdk', '1G');
    await run('qemu-io', ['-f', 'vmdk', '-c', 'write -P 0x11 0 2M', path.join(work, 'sys.vmdk')]);
    await img(work, 'convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'r.raw', 'data.vmdk');
    fs.writeFileSync(path.join(work, 'box.ovf'), '<?xml version="1.0"?>\n<Envelope><References><File ovf:href="sys.vmdk"/><File ovf:href="data.vmdk"/></References></Envelope>\n');
    await run('tar', ['--format=ustar', '-cf', 'box.ova', 'box.ovf', 'sys.vmdk', 'data.vmdk'], { cwd: work });
    const t = await imported({ name: 'box', url: `${base}/f/box.ova` });
    expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded', progress: 1 });
    expect(t.result.disks).toHaveLength(2);
    const [d0, d1] = await Promise.all(t.result.disks.map(disk));
    expect(d0).toMatchObject({ name: 'box-disk0', format: 'qcow2', size: 1, status: 'ready', path: path.join(server.dataDir, 'disks', 'box-disk0.qcow2') });
    expect(d1).toMatchObject({ name: 'box-disk1', format: 'qcow2', size: 1, path: path.join(server.dataDir, 'disks', 'box-disk1.qcow2') });
    expect(await same(path.join(work, 'sys.vmdk'), 'vmdk', d0.path, 'qcow2')).toBe(true);
    expect(await same(path.join(work, 'r.raw'), 'raw', d1.path, 'qcow2')).toBe(true);
    expect(diskDir().filter((f) => f.startsWith('.') || f.endsWith('.part'))).toEqual([]);
  }, 120_000);

  it('imports a vdi and a vhdx converted to qcow2, and an .ova whose vmdk has its header in a footer (as VMware writes it); a differencing vdi fails, leaving nothing', async () => {
    fs.writeFileSync(path.join(work, 'in.raw'), crypto.randomBytes(5 << 20));
    await img(work, 'convert', '-f', 'raw', '-O', 'vdi', 'in.raw', 'in.vdi');
    await img(work, 'convert', '-f', 'raw', '-O', 'vhdx', 'in.raw', 'in.vhdx');
    for (const [name, file] of [
      ['imp-vdi', 'in.vdi'],
      ['imp-vhdx', 'in.vhdx'],
    ] as const) {
      const t = await imported({ name, url: `${base}/f/${file}` });
      expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded', progress: 1 });
      const d = await disk(t.result.disk);
      expect(d).toMatchObject({ name, format: 'qcow2', size: 1, status: 'ready', path: path.join(server.dataDir, 'disks', `${name}.qcow2`) });
      expect(await formatOf(d.path)).toBe('qcow2');
      expect(await same(path.join(work, 'in.raw'), 'raw', d.path, 'qcow2')).toBe(true);
    }
    // VMware's layout, built from qemu-img's stream-optimized vmdk (which writes its header first).
    await img(work, 'convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'in.raw', 'so.vmdk');
    fs.writeFileSync(path.join(work, 'vm-disk1.vmdk'), vmdkWithFooter(fs.readFileSync(path.join(work, 'so.vmdk'))));
    expect(fs.readFileSync(path.join(work, 'vm-disk1.vmdk')).readBigUInt64LE(56)).toBe(0xffffffffffffffffn);
    fs.writeFileSync(path.join(work, 'vm.ovf'), '<?xml version="1.0"?>\n<Envelope><References><File ovf:href="vm-disk1.vmdk"/></References></Envelope>\n');
    await run('tar', ['--format=ustar', '-cf', 'vm.ova', 'vm.ovf', 'vm-disk1.vmdk'], { cwd: work });
    const ova = await imported({ name: 'vmw', url: `${base}/f/vm.ova` });
    expect(ova, JSON.stringify(ova)).toMatchObject({ status: 'succeeded', progress: 1 });
    const [d0] = await Promise.all(ova.result.disks.map(disk));
    expect(d0).toMatchObject({ name: 'vmw-disk0', format: 'qcow2', status: 'ready' });
    expect(await same(path.join(work, 'in.raw'), 'raw', d0.path, 'qcow2')).toBe(true);

    const before = diskDir();
    const vdi = fs.readFileSync(path.join(work, 'in.vdi'));
    vdi.writeUInt32LE(4, 0x4c); // differencing: it names a parent
    fs.writeFileSync(path.join(work, 'diff.vdi'), vdi);
    const diff = await imported({ name: 'imp-diff', url: `${base}/f/diff.vdi` });
    expect(diff).toMatchObject({ status: 'failed', error: expect.stringMatching(/^The downloaded image is a differencing vdi/) });
    expect(diskDir()).toEqual(before);
    expect(diskDir().filter((f) => f.startsWith('.') || f.endsWith('.part'))).toEqual([]);
  }, 180_000);

  it('converts qcow2 → raw and raw → vmdk, each equal to its source', async () => {
    const a = await server.api('POST', `/disks/${qcow2Disk.id}/convert`, { format: 'raw', name: 'conv-raw' });
    expect(a.status, JSON.stringify(a.body)).toBe(202);
    expect(a.body.task).toMatchObject({ kind: 'disk.convert', target: { disk: qcow2Disk.id } });
    const ta = await taskDone(server, a.body.task.id);
    expect(ta, JSON.stringify(ta)).toMatchObject({ status: 'succeeded', progress: 1 });
    const raw = await disk(ta.result.disk);
    expect(raw).toMatchObject({ name: 'conv-raw', format: 'raw', size: 2, path: path.join(server.dataDir, 'disks', 'conv-raw.img') });
    expect(fs.statSync(raw.path).size).toBe(2 * 1024 ** 3);
    expect(await same(qcow2Disk.path, 'qcow2', raw.path, 'raw')).toBe(true);

    const b = await server.api('POST', `/disks/${raw.id}/convert`, { format: 'vmdk', name: 'conv-vmdk' });
    expect(b.status, JSON.stringify(b.body)).toBe(202);
    const tb = await taskDone(server, b.body.task.id);
    expect(tb, JSON.stringify(tb)).toMatchObject({ status: 'succeeded', progress: 1 });
    const vmdk = await disk(tb.result.disk);
    expect(vmdk).toMatchObject({ name: 'conv-vmdk', format: 'vmdk', size: 2 });
    expect(await formatOf(vmdk.path)).toBe('vmdk');
    expect(await same(raw.path, 'raw', vmdk.path, 'vmdk')).toBe(true);
    expect(await same(path.join(work, 'q.qcow2'), 'qcow2', vmdk.path, 'vmdk')).toBe(true);
  }, 180_000);
});

describe('a server killed in the middle of an import', () => {
  const dataDir = makeDataDir();
  const server = new TestServer(dataDir);
  afterAll(async () => {
    await server.dispose();
  });

  it('leaves the task failed "interrupted", no partial file, nothing else changed', async () => {
    await server.start();
    fs.writeFileSync(path.join(work, 'slow.raw'), crypto.randomBytes(8 << 20));
    const r0 = await server.api('POST', '/disks', { name: 'keep', size: 1, format: 'qcow2' });
    await taskDone(server, r0.body.task.id);
    const disksBefore = (await server.api('GET', '/disks')).body.disks;
    const filesBefore = fs.readdirSync(path.join(dataDir, 'disks')).sort();
    const r = await server.api('POST', '/disks/import', { name: 'slow', url: `${base}/slow/slow.raw` });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const running = await waitFor(async () => {
      const t = (await server.api('GET', `/tasks/${r.body.task.id}`)).body.task;
      return t.status === 'running' && t.bytesDone > 0 ? t : null;
    }, 30_000, 'the download to make progress');
    expect(running.bytesTotal).toBe(8 << 20);
    expect(running.bytesDone).toBeLessThan(running.bytesTotal);
    expect(fs.readdirSync(path.join(dataDir, 'disks')).filter((f) => f.startsWith('.import-'))).toHaveLength(1);

    await server.kill('SIGKILL');
    await server.start();
    const t = (await server.api('GET', `/tasks/${r.body.task.id}`)).body.task;
    expect(t).toMatchObject({ status: 'failed', error: 'Interrupted by a server restart' });
    expect(fs.readdirSync(path.join(dataDir, 'disks')).sort()).toEqual(filesBefore);
    expect((await server.api('GET', '/disks')).body.disks).toEqual(disksBefore);
  }, 120_000);
});
