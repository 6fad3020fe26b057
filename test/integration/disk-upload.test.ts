/**
 * Disk image uploads against a real server and real qemu-img: raw, qcow2 and vmdk images made by
 * qemu-img are listed as ready managed disks with their content intact; images that refer to other
 * files (a backing file, an external data file, vmdk extents, a vdi or vhdx parent) or are another
 * format are refused, leaving no file and no record; vdi, vhdx and stream-optimized vmdk images
 * become qcow2 disks with the same content.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vhdxLayout, vmdkWithFooter, VHDX_FILE_PARAMETERS } from '../kit/images.mjs';
import { TestServer, makeDataDir } from './harness.js';

let server: TestServer;
let work: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-upload-'));
  server = await new TestServer(makeDataDir()).start();
});
afterAll(async () => {
  await server?.dispose();
  fs.rmSync(work, { recursive: true, force: true });
});

const img = (...args: string[]) => execFileSync('qemu-img', args, { cwd: work, stdio: 'pipe' });
const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const upload = (name: string, file: string) =>
  server.api('PUT', `/disks/upload/${name}`, fs.readFileSync(file), { 'content-type': 'application/octet-stream' });
const diskDir = () => fs.readdirSync(path.join(server.dataDir, 'disks')).sort();

describe('disk image uploads', () => {
  it('raw, qcow2 and vmdk images become ready managed disks, byte for byte, in the format their header says', async () => {
    fs.writeFileSync(path.join(work, 'r.raw'), crypto.randomBytes(1 << 20));
    img('create', '-q', '-f', 'qcow2', 'q.qcow2', '3G');
    img('create', '-q', '-f', 'vmdk', 'v.vmdk', '1G');
    for (const [name, file, format, size, ext] of [
      ['up-raw', 'r.raw', 'raw', 1, 'img'],
      ['up-qcow2', 'q.qcow2', 'qcow2', 3, 'qcow2'],
      ['up-vmdk', 'v.vmdk', 'vmdk', 1, 'vmdk'],
    ] as const) {
      const r = await upload(name, path.join(work, file));
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.disk).toMatchObject({ name, format, size, status: 'ready', path: path.join(server.dataDir, 'disks', `${name}.${ext}`) });
      expect(sha(r.body.disk.path)).toBe(sha(path.join(work, file)));
      // What the server says is what qemu-img reads, and GET /disks/{id} reads it the safe way too.
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-f', format, '--output=json', r.body.disk.path], { encoding: 'utf8' }));
      expect(info.format).toBe(format);
      const got = await server.api('GET', `/disks/${r.body.disk.id}`);
      expect(got.body.disk.info).toMatchObject({ format, 'virtual-size': info['virtual-size'] });
    }
    expect(diskDir().filter((f) => f.startsWith('.upload-'))).toEqual([]);
  });

  it('vdi, vhdx and stream-optimized vmdk (either layout) are converted to qcow2 <name>.qcow2 with the same content', async () => {
    fs.writeFileSync(path.join(work, 'c.raw'), crypto.randomBytes(3 << 20));
    img('convert', '-f', 'raw', '-O', 'vdi', 'c.raw', 'c.vdi');
    img('convert', '-f', 'raw', '-O', 'vdi', '-o', 'static=on', 'c.raw', 'c-fixed.vdi');
    img('convert', '-f', 'raw', '-O', 'vhdx', 'c.raw', 'c.vhdx');
    img('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'c.raw', 'c-stream.vmdk');
    fs.writeFileSync(path.join(work, 'c-footer.vmdk'), vmdkWithFooter(fs.readFileSync(path.join(work, 'c-stream.vmdk'))));
    for (const [name, file] of [
      ['up-vdi', 'c.vdi'],
      ['up-vdi-fixed', 'c-fixed.vdi'],
      ['up-vhdx', 'c.vhdx'],
      ['up-stream', 'c-stream.vmdk'],
      ['up-footer', 'c-footer.vmdk'],
    ] as const) {
      const r = await upload(name, path.join(work, file));
      expect(r.status, `${file}: ${JSON.stringify(r.body)}`).toBe(201);
      expect(r.body.disk).toMatchObject({ name, format: 'qcow2', size: 1, status: 'ready', path: path.join(server.dataDir, 'disks', `${name}.qcow2`) });
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', r.body.disk.path], { encoding: 'utf8' }));
      expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 3 << 20 });
      expect(info['backing-filename']).toBeUndefined();
      execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'qcow2', path.join(work, 'c.raw'), r.body.disk.path]); // throws unless equal
    }
    expect(diskDir().filter((f) => f.startsWith('.upload-'))).toEqual([]);
  });

  it('refuses images that refer to other files, and other formats, with nothing left behind', async () => {
    img('create', '-q', '-f', 'raw', 'base.raw', '64M');
    img('create', '-q', '-f', 'qcow2', '-b', path.join(work, 'base.raw'), '-F', 'raw', 'child.qcow2');
    img('create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(work, 'data.bin')}`, 'datafile.qcow2', '64M');
    img('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'flat.vmdk', '64M');
    img('create', '-q', '-f', 'qed', 'box.qed', '64M');
    img('convert', '-f', 'raw', '-O', 'vdi', 'base.raw', 'box.vdi');
    const diff = fs.readFileSync(path.join(work, 'box.vdi'));
    diff.writeUInt32LE(4, 0x4c); // a differencing vdi: it names a parent
    fs.writeFileSync(path.join(work, 'diff.vdi'), diff);
    img('convert', '-f', 'raw', '-O', 'vhdx', 'base.raw', 'box.vhdx');
    const vhdx = fs.readFileSync(path.join(work, 'box.vhdx'));
    const params = vhdxLayout(vhdx).item(VHDX_FILE_PARAMETERS).data;
    vhdx.writeUInt32LE(vhdx.readUInt32LE(params + 4) | 2, params + 4); // HasParent
    fs.writeFileSync(path.join(work, 'child.vhdx'), vhdx);
    const before = diskDir();
    const disksBefore = (await server.api('GET', '/disks')).body.disks.length;
    const refused = async (name: string, file: string, message: RegExp) => {
      const r = await upload(name, path.join(work, file));
      expect({ status: r.status, code: r.body.code }, JSON.stringify(r.body)).toEqual({ status: 400, code: 'IMAGE_NOT_ALLOWED' });
      expect(r.body.error).toMatch(message);
    };
    await refused('child', 'child.qcow2', /backing file/);
    await refused('datafile', 'datafile.qcow2', /external data file/);
    await refused('flat', 'flat.vmdk', /./); // a descriptor whose extent is another file
    await refused('box', 'box.qed', /^The uploaded image is qed/);
    await refused('diff', 'diff.vdi', /^The uploaded image is a differencing vdi/);
    await refused('childx', 'child.vhdx', /^The uploaded image is a differencing vhdx/);
    expect(diskDir()).toEqual(before);
    expect((await server.api('GET', '/disks')).body.disks.length).toBe(disksBefore);
  });
});
