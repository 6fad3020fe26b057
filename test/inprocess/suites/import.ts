/**
 * Import and convert (issue 10) over the fake image tool (its copy writes the target format's
 * header); the download, the sha256, the tar reading and the intake checks are the real ones,
 * against a loopback node:http server of the test.
 */
import { DiskEnvelope, TaskEnvelope, VmEnvelope, type Disk, type Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const GiB = 1024 ** 3;

/** A qcow2 header of `gb` GiB (what the server's header checks read), optionally naming a backing file. */
function qcow2(gb: number, backing?: string): Buffer {
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
  return b;
}

/** One ustar member header (name, size, checksum), as tar writes it. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'latin1');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}
function tar(members: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of members) {
    parts.push(tarHeader(name, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
function vmdk(gb: number): Buffer {
  const b = Buffer.alloc(0x200 + 20 * 512);
  b.writeUInt32BE(0x4b444d56, 0);
  b.writeBigUInt64LE((BigInt(gb) * BigInt(GiB)) / 512n, 12);
  b.writeBigUInt64LE(1n, 56);
  return b;
}

export function importSuite(): void {
  describe('disk import and convert', () => {
    let s: InProcessServer;
    let files: http.Server;
    let base: string;
    const served = new Map<string, Buffer>();
    /** Requests to /stall: answered with a header and the first bytes, then nothing. */
    const stalled = new Set<http.ServerResponse>();
    const disk = async (id: string): Promise<Disk> => ((await s.api('GET', `/disks/${id}`)).body as DiskEnvelope).disk;
    const finished = async (task: Task): Promise<Task> => {
      await s.built.tasks.idle();
      return ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
    };
    const diskDir = () => fs.readdirSync(path.join(s.dataDir, 'disks')).sort();
    const importing = async (body: Record<string, unknown>): Promise<Task> => {
      const r = await s.api('POST', '/disks/import', body);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(TaskEnvelope, r.body);
      return (r.body as TaskEnvelope).task;
    };

    beforeAll(async () => {
      s = await startInProcess();
      files = http.createServer((req, res) => {
        const name = (req.url ?? '').slice(1);
        if (name === 'stall') {
          res.writeHead(200, { 'content-length': 1 << 20 });
          res.write(Buffer.alloc(4096));
          stalled.add(res);
          res.on('close', () => stalled.delete(res));
          return;
        }
        if (name === 'chunked') {
          // No Content-Length: only the byte count can stop it.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.write(Buffer.alloc(700 * 1024));
          res.end(Buffer.alloc(700 * 1024));
          return;
        }
        if (name === 'to-ftp') return void res.writeHead(301, { location: 'ftp://127.0.0.1/x' }).end();
        const body = served.get(name);
        if (!body) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': body.length }).end(body);
      });
      await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      for (const r of stalled) r.destroy();
      await new Promise((r) => files.close(r));
      await s.close();
    });

    it('imports a qcow2 image into a new qcow2 disk (sha256 checked), with progress in bytes', async () => {
      const body = qcow2(2);
      served.set('a.qcow2', body);
      const task = await importing({ name: 'imported', url: `${base}/a.qcow2`, sha256: crypto.createHash('sha256').update(body).digest('hex') });
      expect(task).toMatchObject({ kind: 'disk.import', target: { vm: null, disk: null } });
      const done = await finished(task);
      expect(done, JSON.stringify(done)).toMatchObject({ status: 'succeeded', progress: 1, bytesDone: body.length + body.length, bytesTotal: body.length + body.length });
      const d = await disk(done.result!.disk as string);
      expect(d).toMatchObject({ name: 'imported', format: 'qcow2', status: 'ready', path: path.join(s.dataDir, 'disks', 'imported.qcow2'), backingFile: null });
      expect(done.target.disk).toBe(d.id);
      expect(fs.statSync(d.path).mode & 0o777).toBe(0o600);
      expect(diskDir()).toEqual(['imported.qcow2']);
      expectError(await s.api('POST', '/disks/import', { name: 'imported', url: `${base}/a.qcow2` }), 'NAME_TAKEN', 409, 'A disk named imported already exists');
    });

    it('an .ova becomes its vmdk disks <name>-disk<N>, in the format asked', async () => {
      served.set('box.ova', tar([['box.ovf', Buffer.from('<Envelope/>\n')], ['../../etc/evil.vmdk', vmdk(1)], ['b.vmdk', vmdk(3)]]));
      const done = await finished(await importing({ name: 'box', url: `${base}/box.ova`, format: 'raw' }));
      expect(done, JSON.stringify(done)).toMatchObject({ status: 'succeeded' });
      const disks = await Promise.all((done.result!.disks as string[]).map(disk));
      expect(disks.map((d) => [d.name, d.format, d.status, path.basename(d.path)])).toEqual([
        ['box-disk0', 'raw', 'ready', 'box-disk0.img'],
        ['box-disk1', 'raw', 'ready', 'box-disk1.img'],
      ]);
      // Each member was copied out and converted (the fake copy writes the raw target).
      expect(s.images.calls.filter((c) => c.method === 'copy').slice(-2).every((c) => path.basename(c.arg).startsWith('.import-'))).toBe(true);
      // No name from the archive was used as a path.
      expect(fs.existsSync(path.join(s.dataDir, '..', 'etc', 'evil.vmdk'))).toBe(false);
      expect(diskDir().filter((f) => f.startsWith('.'))).toEqual([]);
    });

    it('fails a wrong sha256, a backing file, a redirect away from http(s) and a 404, leaving nothing', async () => {
      served.set('r.img', Buffer.alloc(8192, 1));
      served.set('child.qcow2', qcow2(1, '/etc/passwd'));
      const before = diskDir();
      const disksBefore = s.built.disks.list().length;
      const bad = await finished(await importing({ name: 'bad', url: `${base}/r.img`, sha256: '0'.repeat(64) }));
      expect(bad).toMatchObject({ status: 'failed', error: `sha256 mismatch: expected ${'0'.repeat(64)} got ${crypto.createHash('sha256').update(served.get('r.img')!).digest('hex')}` });
      const child = await finished(await importing({ name: 'child', url: `${base}/child.qcow2` }));
      expect(child.error).toMatch(/^The downloaded image has a backing file/);
      const ftp = await finished(await importing({ name: 'ftp', url: `${base}/to-ftp` }));
      expect(ftp.error).toBe(`${new URL(base).host} redirected to a ftp: URL; only http(s) is followed`);
      const missing = await finished(await importing({ name: 'missing', url: `${base}/nothing` }));
      expect(missing.error).toBe(`${new URL(base).host} answered 404 Not Found`);
      expect(diskDir()).toEqual(before);
      expect(s.built.disks.list()).toHaveLength(disksBefore);
      expectError(await s.api('POST', '/disks/import', { name: 'x', url: 'file:///etc/passwd' }), 'VALIDATION', 400, 'url must be http:// or https://, not file:');
      expectError(await s.api('POST', '/disks/import', { name: 'x', url: 'not a url' }), 'VALIDATION', 400, 'url must be an absolute http:// or https:// URL');
      expectError(await s.api('POST', '/disks/import', { name: 'x', url: `${base}/r.img`, sha256: 'abc' }), 'VALIDATION', 400, /sha256/);
    });

    it('a download over MAX_UPLOAD_MB (declared or not) or idle for UPLOAD_IDLE_TIMEOUT_S fails, leaving nothing', async () => {
      const small = await startInProcess({ env: { MAX_UPLOAD_MB: '1', UPLOAD_IDLE_TIMEOUT_S: '1' } });
      try {
        served.set('big.img', Buffer.alloc(2 << 20));
        const run = async (name: string, url: string): Promise<Task> => {
          const r = await small.api('POST', '/disks/import', { name, url });
          expect(r.status, JSON.stringify(r.body)).toBe(202);
          await small.built.tasks.idle();
          return ((await small.api('GET', `/tasks/${(r.body as TaskEnvelope).task.id}`)).body as TaskEnvelope).task;
        };
        expect(await run('big', `${base}/big.img`)).toMatchObject({ status: 'failed', error: 'The download is larger than the limit of 1048576 bytes (MAX_UPLOAD_MB)' });
        expect(await run('chunked', `${base}/chunked`)).toMatchObject({ status: 'failed', error: 'The download is larger than the limit of 1048576 bytes (MAX_UPLOAD_MB)' });
        expect(await run('idle', `${base}/stall`)).toMatchObject({ status: 'failed', error: 'The download sent nothing for 1 s and was aborted', bytesDone: 4096 });
        expect(fs.readdirSync(path.join(small.dataDir, 'disks'))).toEqual([]);
        expect(small.built.disks.list()).toEqual([]);
      } finally {
        await small.close();
      }
    });

    it('a cancel aborts the download and removes its file', async () => {
      const task = await importing({ name: 'stalled', url: `${base}/stall` });
      let running: Task | undefined;
      for (let i = 0; i < 200 && !(running && running.bytesDone > 0); i++) {
        await new Promise((r) => setTimeout(r, 20));
        running = ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
      }
      expect(running).toMatchObject({ status: 'running', bytesDone: 4096, bytesTotal: 1 << 20 });
      expect(diskDir().filter((f) => f.startsWith('.import-'))).toHaveLength(1);
      const c = await s.api('DELETE', `/tasks/${task.id}`);
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      expect(((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task.status).toBe('cancelled');
      expect(diskDir().filter((f) => f.startsWith('.import-'))).toEqual([]);
      expect(s.built.disks.list().some((d) => d.name === 'stalled')).toBe(false);
    });

    it('converts a disk into another format under a new name; refusals are 4xx with nothing changed', async () => {
      const r = await s.api('POST', '/disks', { name: 'csrc', size: 2, format: 'qcow2' });
      await s.built.tasks.idle();
      const src = await disk((r.body as { disk: Disk }).disk.id);
      const c = await s.api('POST', `/disks/${src.id}/convert`, { format: 'vmdk', name: 'cdst' });
      expect(c.status, JSON.stringify(c.body)).toBe(202);
      expectShape(TaskEnvelope, c.body);
      const done = await finished((c.body as TaskEnvelope).task);
      expect(done).toMatchObject({ kind: 'disk.convert', status: 'succeeded', target: { disk: src.id }, progress: 1 });
      const dst = await disk(done.result!.disk as string);
      expect(dst).toMatchObject({ name: 'cdst', format: 'vmdk', size: 2, status: 'ready', path: path.join(s.dataDir, 'disks', 'cdst.vmdk') });
      expect(fs.readFileSync(dst.path).readUInt32BE(0)).toBe(0x4b444d56);
      expect(fs.existsSync(`${dst.path}.part`)).toBe(false);

      expectError(await s.api('POST', '/disks/nope/convert', { format: 'raw', name: 'n1' }), 'DISK_NOT_FOUND', 404, 'Disk not found: nope');
      expectError(await s.api('POST', `/disks/${src.id}/convert`, { format: 'raw', name: 'cdst' }), 'NAME_TAKEN', 409, 'A disk named cdst already exists');
      expectError(await s.api('POST', `/disks/${src.id}/convert`, { format: 'vdi', name: 'n2' }), 'VALIDATION', 400, /format/);
      // A linked clone (an overlay) is converted flattened: its whole chain is read (test/integration/copy-chain.test.ts).
      const l = await s.api('POST', `/disks/${src.id}/clone`, { name: 'clinked', mode: 'linked' });
      const linked = (await finished((l.body as TaskEnvelope).task)).result!.disk as string;
      const flat = await s.api('POST', `/disks/${linked}/convert`, { format: 'raw', name: 'cflat' });
      expect(flat.status).toBe(202);
      expect(await finished((flat.body as TaskEnvelope).task)).toMatchObject({ kind: 'disk.convert', status: 'succeeded' });
      // Attached to a running VM: 409, stop it first.
      const other = await s.api('POST', '/disks', { name: 'crun', size: 1, format: 'raw' });
      await s.built.tasks.idle();
      const vm = ((await s.api('POST', '/vms', { name: 'convvm', cpus: 1, memory: 96 })).body as VmEnvelope).vm;
      expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: (other.body as { disk: Disk }).disk.path })).status).toBe(200);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expectError(await s.api('POST', `/disks/${(other.body as { disk: Disk }).disk.id}/convert`, { format: 'qcow2', name: 'n4' }), 'VM_NOT_STOPPED', 409, 'Disk crun is attached to VM convvm, which is running; stop it first');
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      expect(s.built.disks.list().map((d) => d.name).filter((n) => /^n\d$/.test(n))).toEqual([]);
      expect(diskDir().filter((f) => f.startsWith('n'))).toEqual([]);
    });
  });
}
