/**
 * Images the server is given are never trusted: formats are never probed, every file an image
 * refers to must be a plain file under the storage roots, ISO library files are CD media only, and
 * qemu-img reads existing images as an unprivileged user, bounded in time and number, its messages
 * kept in the log. Real server, real qemu-img, real qemu-nbd.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, waitFor } from './harness.js';

let server: TestServer;
let root: string; // an extra storage root
let vmId: string;

const img = (...args: string[]) => execFileSync('qemu-img', args, { stdio: ['ignore', 'ignore', 'pipe'] });

async function readyDisk(s: TestServer, name: string, format: string) {
  const r = await s.api('POST', '/disks', { name, size: 1, format });
  expect(r.status).toBe(201);
  return waitFor(async () => {
    const d = (await s.api('GET', '/disks')).body.disks.find((x: { id: string }) => x.id === r.body.disk.id);
    return d.status !== 'creating' && d;
  }, 20_000, `disk ${name}`);
}

/** Writes a whole small image over the start of `target`, as a guest writing its first sectors would. */
function overwriteStart(target: string, image: string) {
  const bytes = fs.readFileSync(image);
  const fd = fs.openSync(target, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, 0);
  fs.closeSync(fd);
}

/** Marks a file as an ISO 9660 image (CD001 at the first volume descriptor) without touching its header. */
function makePolyglot(file: string) {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('\x01CD001\x01', 'latin1'), 0, 7, 16 * 2048);
  fs.closeSync(fd);
}

async function vmDisks() {
  return (await server.api('GET', `/vms/${vmId}`)).body.vm.disks as Array<{ path: string; format: string }>;
}

function expectRefused(r: { status: number; body: any }, status: number, code?: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(typeof r.body.error).toBe('string');
  expect(Date.parse(r.body.timestamp)).not.toBeNaN();
  if (code) expect(r.body.code).toBe(code);
}

beforeAll(async () => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-imgroot-')));
  server = await new TestServer(makeDataDir(), { STORAGE_ROOTS: root }).start();
  vmId = (await server.api('POST', '/vms', { name: 'images', cpus: 1, memory: 96 })).body.vm.id;
});
afterAll(async () => {
  await server?.dispose();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('attaching images', () => {
  it('an ISO library file is never a disk, not even a qcow2 or vmdk polyglot, with or without a format', async () => {
    const isos = path.join(server.dataDir, 'isos');
    img('create', '-q', '-f', 'qcow2', path.join(isos, 'poly-qcow2.iso'), '1M');
    img('create', '-q', '-f', 'vmdk', path.join(isos, 'poly-vmdk.iso'), '1M');
    makePolyglot(path.join(isos, 'poly-qcow2.iso'));
    makePolyglot(path.join(isos, 'poly-vmdk.iso'));
    for (const [name, format] of [['poly-qcow2.iso', 'qcow2'], ['poly-vmdk.iso', 'vmdk']] as const) {
      const diskPath = fs.realpathSync(path.join(isos, name));
      for (const body of [{ diskPath }, { diskPath, format }, { diskPath, format: 'raw' }]) {
        const r = await server.api('POST', `/vms/${vmId}/disks/attach`, body);
        expectRefused(r, 400, 'IMAGE_NOT_ALLOWED');
        expect(r.body.error).toContain('ISO library');
      }
    }
    expect(await vmDisks()).toEqual([]);
  });

  it('a managed raw disk whose first sectors became a qcow2 header is attached as raw, as recorded', async () => {
    const victim = await readyDisk(server, 'victim', 'raw');
    const raw = await readyDisk(server, 'rewritten', 'raw');
    // What a guest could write at the start of its raw disk: a qcow2 backed by another VM's disk.
    const header = path.join(root, 'header.qcow2');
    img('create', '-q', '-f', 'qcow2', '-u', '-b', victim.path, '-F', 'raw', header, '1G');
    overwriteStart(raw.path, header);
    const r = await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: raw.path });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.vm.disks).toEqual([expect.objectContaining({ path: raw.path, format: 'raw' })]);
    // Asking for another format than the recorded one is refused.
    expect((await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath: raw.path })).status).toBe(200);
    expectRefused(await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: raw.path, format: 'qcow2' }), 400, 'IMAGE_NOT_ALLOWED');
    expect(await vmDisks()).toEqual([]);
  });

  it('an external raw image rewritten into a qcow2 is not re-attached until its format is named', async () => {
    const file = path.join(root, 'external.img');
    img('create', '-q', '-f', 'raw', file, '64M');
    const first = await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: file });
    expect(first.status).toBe(200);
    expect(first.body.vm.disks[0]).toMatchObject({ path: file, format: 'raw' });
    expect((await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath: file })).status).toBe(200);
    const header = path.join(root, 'header2.qcow2');
    img('create', '-q', '-f', 'qcow2', header, '1G');
    overwriteStart(file, header);
    const again = await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: file });
    expectRefused(again, 400, 'IMAGE_NOT_ALLOWED');
    expect(again.body.error).toContain('"format": "qcow2"');
    expect(await vmDisks()).toEqual([]);
  });

  it('refuses data files, vmdk extents, json: and nbd backings, in any format spelling, changing nothing', async () => {
    const f = (n: string) => path.join(root, n);
    img('create', '-q', '-f', 'qcow2', '-o', `data_file=${f('data.raw')}`, f('datafile.qcow2'), '1M');
    img('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', f('flat.vmdk'), '1M');
    img('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', f('twogb.vmdk'), '1M');
    img('create', '-q', '-f', 'vmdk', f('parent.vmdk'), '1M');
    img('create', '-q', '-f', 'vmdk', '-b', f('parent.vmdk'), '-F', 'vmdk', f('child.vmdk'), '1M');
    const json = 'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/shadow"}}';
    img('create', '-q', '-f', 'qcow2', '-u', '-b', json, '-F', 'raw', f('json.qcow2'), '1M');
    img('create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1:9/x', '-F', 'raw', f('nbd.qcow2'), '1M');
    img('create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/shadow', '-F', 'raw', f('shadow.qcow2'), '1M');
    const cases: Array<[string, string, string]> = [
      ['datafile.qcow2', 'qcow2', 'IMAGE_NOT_ALLOWED'],
      ['flat.vmdk', 'vmdk', 'IMAGE_NOT_ALLOWED'],
      ['twogb.vmdk', 'vmdk', 'IMAGE_NOT_ALLOWED'],
      ['child.vmdk', 'vmdk', 'IMAGE_NOT_ALLOWED'],
      ['json.qcow2', 'qcow2', 'IMAGE_NOT_ALLOWED'],
      ['nbd.qcow2', 'qcow2', 'IMAGE_NOT_ALLOWED'],
      ['shadow.qcow2', 'qcow2', 'PATH_NOT_ALLOWED'],
    ];
    const filesBefore = fs.readdirSync(root).sort();
    for (const [name, format, code] of cases) {
      // Named format: the image's references are refused. Unnamed: nothing is guessed.
      expectRefused(await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: f(name), format }), 400, code);
      expectRefused(await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: f(name) }), 400, 'IMAGE_NOT_ALLOWED');
    }
    expect(await vmDisks()).toEqual([]);
    expect(fs.readdirSync(root).sort()).toEqual(filesBefore);
  });

  it('a disk attached to a VM, or a managed disk, is never CD media', async () => {
    const d = await readyDisk(server, 'notcd', 'raw');
    expectRefused(await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath: d.path }), 400, 'IMAGE_NOT_ALLOWED');
    const ext = path.join(root, 'attached.img');
    img('create', '-q', '-f', 'raw', ext, '1M');
    expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: ext })).status).toBe(200);
    const other = (await server.api('POST', '/vms', { name: 'cd-user', cpus: 1, memory: 96 })).body.vm.id;
    expectRefused(await server.api('POST', `/vms/${other}/iso/mount`, { isoPath: ext }), 409, 'DISK_IN_USE');
    expect((await server.api('GET', `/vms/${other}`)).body.vm.iso).toBeNull();
    expect((await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath: ext })).status).toBe(200);
  });

  it('an ISO mounted in a VM cannot be deleted (ISO_IN_USE), and is deleted once ejected', async () => {
    const iso = Buffer.alloc(40_000);
    iso.write('\x01CD001', 16 * 2048, 'latin1');
    const up = await server.api('PUT', '/isos/inuse.iso', iso, { 'content-type': 'application/octet-stream' });
    expect(up.status).toBe(201);
    expect((await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath: up.body.iso.path })).status).toBe(200);
    expectRefused(await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: up.body.iso.path }), 400, 'IMAGE_NOT_ALLOWED');
    expectRefused(await server.api('DELETE', '/isos/inuse.iso'), 409, 'ISO_IN_USE');
    expect(fs.existsSync(up.body.iso.path)).toBe(true);
    expect((await server.api('POST', `/vms/${vmId}/iso/unmount`)).status).toBe(200);
    expect((await server.api('DELETE', '/isos/inuse.iso')).status).toBe(200);
  });
});

/** The files a process has open (its /proc fd links). */
function openFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return fs.readdirSync(dir).flatMap((n) => {
    try {
      return [fs.readlinkSync(path.join(dir, n))];
    } catch {
      return [];
    }
  });
}

async function newVm(name: string): Promise<string> {
  const r = await server.api('POST', '/vms', { name, cpus: 1, memory: 96 });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.vm.id;
}

async function attach(id: string, diskPath: string, format?: string) {
  return server.api('POST', `/vms/${id}/disks/attach`, format ? { diskPath, format } : { diskPath });
}

/** A start the server must refuse before QEMU runs: 422 QEMU_START_FAILED, the VM stays stopped. */
async function expectStartRefused(id: string, message: RegExp) {
  const r = await server.api('POST', `/vms/${id}/start`);
  expectRefused(r, 422, 'QEMU_START_FAILED');
  expect(r.body.error).toMatch(message);
  expect((await server.api('GET', `/vms/${id}`)).body.vm).toMatchObject({ status: 'stopped', pid: null });
}

/** Starts a VM (no guest needs to boot), returns what its QEMU has open and its command, and stops it. */
async function startAndStop(id: string): Promise<{ files: string[]; command: string }> {
  const r = await server.api('POST', `/vms/${id}/start`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const files = openFiles(r.body.vm.pid);
  expect((await server.api('POST', `/vms/${id}/stop`)).status).toBe(200);
  return { files, command: r.body.command };
}

describe('backing files are nobody\'s disk', () => {
  it('refuses at attach an image backed by a managed disk or by a disk attached to a VM', async () => {
    const vm = await newVm('backing-attach');
    const managed = await readyDisk(server, 'backing-victim', 'raw');
    const overManaged = path.join(root, 'over-managed.qcow2');
    img('create', '-q', '-f', 'qcow2', '-u', '-b', managed.path, '-F', 'raw', overManaged, '1G');
    const r1 = await attach(vm, overManaged, 'qcow2');
    expectRefused(r1, 400, 'IMAGE_NOT_ALLOWED');
    expect(r1.body.error).toContain('backing-victim');

    const other = await newVm('backing-owner');
    const shared = path.join(root, 'owned.img');
    img('create', '-q', '-f', 'raw', shared, '1M');
    expect((await attach(other, shared)).status).toBe(200);
    const overAttached = path.join(root, 'over-attached.qcow2');
    img('create', '-q', '-f', 'qcow2', '-u', '-b', shared, '-F', 'raw', overAttached, '1M');
    const r2 = await attach(vm, overAttached, 'qcow2');
    expectRefused(r2, 400, 'IMAGE_NOT_ALLOWED');
    expect(r2.body.error).toContain(other);
    expect((await server.api('GET', `/vms/${vm}`)).body.vm.disks).toEqual([]);
  });

  it('refuses at start (422) a backing file that became a VM\'s disk or an ISO library file; a plain one starts', async () => {
    const vm = await newVm('backing-start');
    const base = path.join(root, 'base4.img');
    img('create', '-q', '-f', 'raw', base, '1M');
    const over = path.join(root, 'over4.qcow2');
    img('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', over);
    expect((await attach(vm, over, 'qcow2')).status).toBe(200);
    // A plain backing file is fine, and QEMU gets it.
    expect((await startAndStop(vm)).files).toContain(base);

    // The base is attached to another VM afterwards: starting the overlay would read that VM's disk.
    const other = await newVm('base-owner');
    expect((await attach(other, base)).status).toBe(200);
    await expectStartRefused(vm, new RegExp(`${base.replace(/[.]/g, '\\.')}.*attached to VM ${other}`));
    expect((await server.api('POST', `/vms/${other}/disks/detach`, { diskPath: base })).status).toBe(200);

    // The overlay is rebased onto an ISO library file after attach.
    const iso = path.join(server.dataDir, 'isos', 'backing.iso');
    fs.writeFileSync(iso, Buffer.alloc(1 << 20));
    img('rebase', '-q', '-u', '-f', 'qcow2', '-b', fs.realpathSync(iso), '-F', 'raw', over);
    await expectStartRefused(vm, /ISO library/);
    img('rebase', '-q', '-u', '-f', 'qcow2', '-b', base, '-F', 'raw', over);
    expect((await startAndStop(vm)).files).toContain(base);
  });
});

describe('records an earlier version left', () => {
  let managedVm: string;
  let vdiVm: string;
  let isoVm: string;
  let victim: { path: string };
  let rewritten: { path: string };
  let isoDisk: string;

  beforeAll(async () => {
    // A managed raw disk a guest rewrote into a qcow2 backed by another disk, which the earlier
    // version probed and recorded as qcow2 when it was attached.
    managedVm = await newVm('old-managed');
    victim = await readyDisk(server, 'old-victim', 'raw');
    rewritten = await readyDisk(server, 'old-rewritten', 'raw');
    expect((await attach(managedVm, rewritten.path)).status).toBe(200);
    const header = path.join(root, 'old-header.qcow2');
    img('create', '-q', '-f', 'qcow2', '-u', '-b', victim.path, '-F', 'raw', header, '1G');
    overwriteStart(rewritten.path, header);
    // A vdi image, recorded as vdi by probing.
    vdiVm = await newVm('old-vdi');
    const vdi = path.join(root, 'old.vdi');
    img('create', '-q', '-f', 'vdi', vdi, '1M');
    expect((await attach(vdiVm, vdi, 'raw')).status).toBe(200);
    // An ISO library file attached as a disk.
    isoVm = await newVm('old-iso');
    isoDisk = fs.realpathSync(path.join(server.dataDir, 'isos')) + '/old-disk.iso';
    fs.writeFileSync(isoDisk, Buffer.alloc(1 << 20));

    await server.kill('SIGTERM');
    const db = new Database(path.join(server.dataDir, 'db.sqlite'));
    try {
      db.prepare(`UPDATE vm_disks SET format = 'qcow2' WHERE path = ?`).run(rewritten.path);
      db.prepare(`UPDATE vm_disks SET format = 'vdi' WHERE path = ?`).run(vdi);
      db.prepare(`INSERT INTO vm_disks (path, vm_id, format, position, attached_at) VALUES (?, ?, 'raw', 0, ?)`).run(isoDisk, isoVm, new Date().toISOString());
    } finally {
      db.close();
    }
    await server.start();
  });

  it('a managed disk opens in the format it was created with, not the one recorded at attach, and the log says so', async () => {
    const { files, command } = await startAndStop(managedVm);
    expect(files).toContain(rewritten.path);
    expect(files).not.toContain(victim.path);
    expect(command).not.toContain('"driver":"qcow2"');
    await waitFor(() => server.log.includes('opens as created'), 5_000, 'the format difference in the log');
  });

  it('a format the server does not read itself (vdi) is refused at start: convert it', async () => {
    await expectStartRefused(vdiVm, /vdi.*only raw, qcow2 and vmdk.*convert/);
  });

  it('an ISO library file attached as a disk is refused at start', async () => {
    await expectStartRefused(isoVm, /ISO library/);
  });
});

describe('GET /disks/{id} on a tampered image', () => {
  it('answers a fixed message for an nbd or /etc/shadow backing: no qemu-img text, no file bytes', async () => {
    const shadowHead = fs.readFileSync('/etc/shadow', 'utf8').slice(0, 12);
    for (const [name, backing] of [['tamper-nbd', 'nbd://127.0.0.1:9/x'], ['tamper-shadow', '/etc/shadow']]) {
      const d = await readyDisk(server, name, 'qcow2');
      const evil = path.join(root, `${name}.qcow2`);
      img('create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', 'raw', evil, '1G');
      fs.copyFileSync(evil, d.path);
      const r = await server.api('GET', `/disks/${d.id}`);
      expectRefused(r, 409);
      const text = JSON.stringify(r.body);
      expect(text).not.toMatch(/Could not open|Failed to connect|qemu-img:/);
      expect(text).not.toContain(shadowHead);
    }
  });
});

describe('qemu-img on existing images', () => {
  let wrapped: TestServer;
  let tools: string;
  let marks: string;
  let disk: { id: string; path: string };

  const mode = (m: string) => fs.writeFileSync(path.join(marks, 'mode'), m, { mode: 0o644 });
  const runs = () => fs.readdirSync(marks).filter((n) => n.startsWith('run.'));

  beforeAll(async () => {
    // A qemu-img that records who runs it and how, and can misbehave on demand.
    tools = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-tools-'));
    fs.chmodSync(tools, 0o755);
    marks = path.join(tools, 'marks');
    fs.mkdirSync(marks);
    fs.chmodSync(marks, 0o777);
    mode('normal');
    const real = execFileSync('sh', ['-c', 'command -v qemu-img'], { encoding: 'utf8' }).trim();
    const nbd = execFileSync('sh', ['-c', 'command -v qemu-nbd'], { encoding: 'utf8' }).trim();
    fs.writeFileSync(
      path.join(tools, 'qemu-img'),
      [
        '#!/bin/sh',
        `M=${marks}`,
        'case "$1" in create) exec ' + real + ' "$@";; esac',
        'echo "$(id -u) $*" > "$M/run.$$"',
        'case "$(cat "$M/mode")" in',
        '  leak) echo "SECRET-MARKER-6d1f qemu-img: leaked" >&2; exit 1;;',
        '  hang) exec sleep 60;;',
        '  block) while [ ! -e "$M/release" ]; do sleep 0.05; done;;',
        'esac',
        `exec ${real} "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    fs.symlinkSync(nbd, path.join(tools, 'qemu-nbd'));
    wrapped = await new TestServer(makeDataDir(), { QEMU_IMG_BINARY: path.join(tools, 'qemu-img') }).start();
    disk = await readyDisk(wrapped, 'inspected', 'qcow2');
  });
  afterAll(async () => {
    fs.writeFileSync(path.join(marks, 'release'), '');
    await wrapped?.dispose();
    fs.rmSync(tools, { recursive: true, force: true });
  });

  it('runs as the unprivileged qm-img user, with an explicit format, -U and no backing chain', async () => {
    for (const n of runs()) fs.rmSync(path.join(marks, n));
    const r = await wrapped.api('GET', `/disks/${disk.id}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.disk.info).toMatchObject({ format: 'qcow2', 'virtual-size': 1024 ** 3, filename: disk.path });
    const [run] = runs();
    const line = fs.readFileSync(path.join(marks, run), 'utf8');
    const uid = execFileSync('id', ['-u', 'qm-img'], { encoding: 'utf8' }).trim();
    expect(uid).not.toBe('0');
    expect(line.split(' ')[0]).toBe(uid);
    expect(line).toContain(' -U ');
    expect(line).toContain('driver=qcow2,file.driver=nbd,');
    expect(line).not.toContain('--backing-chain');
    expect(line).not.toContain(disk.path);
  });

  it('never sends qemu-img stderr to the client; logs it', async () => {
    mode('leak');
    const r = await wrapped.api('GET', `/disks/${disk.id}`);
    expectRefused(r, 409);
    expect(JSON.stringify(r.body)).not.toContain('SECRET-MARKER-6d1f');
    await waitFor(() => wrapped.log.includes('SECRET-MARKER-6d1f'), 5_000, 'stderr in the server log');
  });

  it('kills a qemu-img that does not finish and answers 504 TOOL_TIMEOUT', async () => {
    mode('hang');
    const r = await wrapped.api('GET', `/disks/${disk.id}`);
    expectRefused(r, 504, 'TOOL_TIMEOUT');
  });

  it('runs at most 4 at once; beyond a bounded queue, refuses at once with 429', async () => {
    mode('block');
    for (const n of runs()) fs.rmSync(path.join(marks, n));
    const all = Array.from({ length: 24 }, () => wrapped.api('GET', `/disks/${disk.id}`));
    const statuses: number[] = [];
    for (const p of all) void p.then((r) => statuses.push(r.status));
    // 4 run, 16 wait, 4 are refused at once.
    await waitFor(() => runs().length === 4 && statuses.filter((s) => s === 429).length === 4, 8_000, '4 running and 4 refused');
    expect(runs()).toHaveLength(4);
    expect(statuses).toEqual([429, 429, 429, 429]);
    fs.writeFileSync(path.join(marks, 'release'), '');
    const results = await Promise.all(all);
    expect(results.filter((r) => r.status === 200)).toHaveLength(20);
    expect(results.filter((r) => r.status === 429)).toHaveLength(4);
    expect(runs()).toHaveLength(20);
  });
});
