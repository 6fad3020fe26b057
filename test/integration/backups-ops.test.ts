/**
 * Backups: restore, verify, delete, import (issue 13) with real qemu-img, qemu-nbd and the server.
 * The backup directories are made here with qemu-img and qemu-io (a full: known bytes; an
 * incremental: an overlay `-b ../<parent>/disk0.qcow2` with more bytes), with their manifests, and
 * listed through the import route.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, TestServer, waitFor } from './harness.js';

const run = promisify(execFile);
const ids = new Map<string, string>();
/** A stable UUID per readable name used in this file. */
const uid = (name: string) => {
  if (!ids.has(name)) ids.set(name, crypto.randomUUID());
  return ids.get(name)!;
};
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

async function taskDone(server: TestServer, id: string, timeoutMs = 180_000): Promise<any> {
  return waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return t.status !== 'queued' && t.status !== 'running' ? t : null;
  }, timeoutMs, `task ${id} to end`);
}
/** True when the two images (each read through its chain) hold the same bytes. */
async function sameContent(a: string, b: string): Promise<boolean> {
  try {
    await run('qemu-img', ['compare', '-U', '-q', '-f', 'qcow2', '-F', 'qcow2', a, b]);
    return true;
  } catch {
    return false;
  }
}
function backingOf(file: string): string | null {
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as Record<string, unknown>;
  return (info['backing-filename'] as string | undefined) ?? null;
}

describe('backups: import, verify, restore, delete', () => {
  let server: TestServer;
  let root: string;
  let vm: any;
  let diskPath: string;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bk-'));

  /** A backup directory of `vm` under the default target; returns its path. */
  function makeBackup(idName: string, parentName: string | null, writes: Array<[number, number, number]>, edit?: (m: any) => void): string {
    const id = uid(idName);
    const parent = parentName === null ? null : uid(parentName);
    const dir = path.join(root, vm.id, id);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'disk0.qcow2');
    if (parent) execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', `../${parent}/disk0.qcow2`, file]);
    else execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '1G']);
    for (const [pattern, off, len] of writes) execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P ${pattern} ${off} ${len}`, file]);
    const manifest = {
      schema: 1,
      id,
      kind: parent ? 'incremental' : 'full',
      parent,
      createdAt: new Date().toISOString(),
      frozen: false,
      qemuVersion: '7.2.0',
      vm,
      disks: [
        {
          index: 0,
          file: 'disk0.qcow2',
          source: diskPath,
          sourceFormat: 'qcow2',
          virtualSize: 1024 ** 3,
          sizeBytes: fs.statSync(file).size,
          sha256: sha256(file),
          backing: parent ? `../${parent}/disk0.qcow2` : null,
        },
      ],
    };
    edit?.(manifest);
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    return dir;
  }
  async function importOk(dir: string): Promise<void> {
    const r = await server.api('POST', '/backups/import', { path: dir });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t.status, t.error).toBe('succeeded');
  }
  /** A flattened copy of a fixture file's chain, made by hand: what a restore must give. */
  function expected(name: string, file: string): string {
    const out = path.join(scratch, `${name}.qcow2`);
    execFileSync('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'qcow2', file, out]);
    return out;
  }

  beforeAll(async () => {
    server = await new TestServer(makeDataDir()).start();
    root = path.join(server.dataDir, 'backups');
    fs.mkdirSync(root, { recursive: true });
    const d = await server.api('POST', '/disks', { name: 'src-disk0', size: 1, format: 'qcow2' });
    expect(d.status).toBe(201);
    const done = await waitFor(async () => {
      const x = (await server.api('GET', `/disks/${d.body.disk.id}`)).body.disk;
      return x.status === 'ready' ? x : null;
    }, 30_000, 'the disk');
    diskPath = done.path;
    vm = (await server.api('POST', '/vms', { name: 'src', cpus: 1, memory: 128 })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath })).status).toBe(200);
    vm = (await server.api('GET', `/vms/${vm.id}`)).body.vm;
  }, 60_000);

  afterAll(async () => {
    await server?.dispose();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  let full: string;
  let incr: string;
  let expectFull: string;
  let expectIncr: string;

  it('imports a full and an incremental; refuses bad input with nothing listed', async () => {
    full = makeBackup('bk-full', null, [[0x11, 0, 1 << 20]]);
    incr = makeBackup('bk-incr', 'bk-full', [[0x22, 1 << 20, 1 << 20]]);
    expectFull = expected('full', path.join(full, 'disk0.qcow2'));
    expectIncr = expected('incr', path.join(incr, 'disk0.qcow2'));
    expect(await sameContent(expectFull, expectIncr)).toBe(false);

    // An incremental whose parent is not listed yet: import parents first.
    const early = await server.api('POST', '/backups/import', { path: incr });
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('FILE_MISSING');
    await importOk(full);
    await importOk(incr);
    // Listed once.
    expect((await server.api('POST', '/backups/import', { path: full })).body.code).toBe('NAME_TAKEN');

    // Outside any target.
    const outside = path.join(scratch, vm.id, 'bk-out');
    fs.mkdirSync(outside, { recursive: true });
    const o = await server.api('POST', '/backups/import', { path: outside });
    expect(o.status).toBe(400);
    expect(o.body.code).toBe('PATH_NOT_ALLOWED');
    // A symlinked backup directory.
    fs.symlinkSync(full, path.join(root, vm.id, 'bk-link'));
    expect((await server.api('POST', '/backups/import', { path: path.join(root, vm.id, 'bk-link') })).body.code).toBe('PATH_NOT_ALLOWED');
    // A file name that leaves the directory.
    const evil = makeBackup('bk-evil', null, [[0x33, 0, 4096]], (m) => (m.disks[0].file = '../x'));
    const e = await server.api('POST', '/backups/import', { path: evil });
    expect(e.status).toBe(400);
    expect(e.body.code).toBe('VALIDATION');
    // A sha256 that does not match: the task fails, nothing is listed.
    const bad = makeBackup('bk-badsum', null, [[0x44, 0, 4096]], (m) => (m.disks[0].sha256 = 'a'.repeat(64)));
    const b = await server.api('POST', '/backups/import', { path: bad });
    expect(b.status).toBe(202);
    const bt = await taskDone(server, b.body.task.id);
    expect(bt.status).toBe('failed');
    expect(bt.error).toMatch(/sha256/);
    expect((await server.api('POST', `/backups/${uid('bk-badsum')}/verify`)).status).toBe(404);
    expect((await server.api('POST', `/backups/${uid('bk-evil')}/verify`)).status).toBe(404);
  }, 120_000);

  it('verifies a good backup', async () => {
    const r = await server.api('POST', `/backups/${uid('bk-incr')}/verify`);
    expect(r.status).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t.status, t.error).toBe('succeeded');
  }, 60_000);

  it('restores the incremental as a new VM: its disk holds the chain flattened', async () => {
    const r = await server.api('POST', `/backups/${uid('bk-incr')}/restore`, { as: 'new', name: 'rest1' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t.status, t.error).toBe('succeeded');
    const made = (await server.api('GET', `/vms/${t.result.vm}`)).body.vm;
    expect(made).toMatchObject({ name: 'rest1', cpus: 1, memory: 128 });
    expect(made.id).not.toBe(vm.id);
    expect(made.mac).not.toBe(vm.mac);
    expect(made.vnc_port ?? made.vncPort).not.toBe(vm.vnc_port ?? vm.vncPort);
    const file = made.disks[0].path;
    expect(path.basename(file)).toBe('rest1-disk0.qcow2');
    expect(backingOf(file)).toBeNull();
    expect(await sameContent(file, expectIncr)).toBe(true);
  }, 120_000);

  it('replace onto a running VM is 409 with nothing changed; onto the stopped VM it swaps the disk content', async () => {
    const s = await server.api('POST', `/vms/${vm.id}/start`);
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    const refused = await server.api('POST', `/backups/${uid('bk-full')}/restore`, { as: 'replace' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('VM_NOT_STOPPED');
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect(fs.readdirSync(path.dirname(diskPath)).filter((f) => f.includes('.restore'))).toEqual([]);
    expect(await sameContent(diskPath, expectFull)).toBe(false);

    const r = await server.api('POST', `/backups/${uid('bk-full')}/restore`, { as: 'replace' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t.status, t.error).toBe('succeeded');
    expect(await sameContent(diskPath, expectFull)).toBe(true);
    expect(fs.readdirSync(path.dirname(diskPath)).filter((f) => f.includes('.restore') || f.includes('.layer'))).toEqual([]);
  }, 120_000);

  it('deleting the full of a full+incremental chain merges it: the incremental is full and restores to the same bytes', async () => {
    const r = await server.api('DELETE', `/backups/${uid('bk-full')}`);
    expect(r.status).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t.status, t.error).toBe('succeeded');
    expect(fs.existsSync(full)).toBe(false);
    const m = JSON.parse(fs.readFileSync(path.join(incr, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ kind: 'full', parent: null });
    expect(m.disks[0].backing).toBeNull();
    expect(m.disks[0].sha256).toBe(sha256(path.join(incr, 'disk0.qcow2')));
    expect(backingOf(path.join(incr, 'disk0.qcow2'))).toBeNull();
    expect(fs.readdirSync(incr).sort()).toEqual(['disk0.qcow2', 'manifest.json']);
    expect(await sameContent(path.join(incr, 'disk0.qcow2'), expectIncr)).toBe(true);
    expect((await server.api('POST', `/backups/${uid('bk-full')}/verify`)).status).toBe(404);

    const v = await taskDone(server, (await server.api('POST', `/backups/${uid('bk-incr')}/verify`)).body.task.id);
    expect(v.status, v.error).toBe('succeeded');
    const rr = await server.api('POST', `/backups/${uid('bk-incr')}/restore`, { as: 'new', name: 'rest2' });
    const rt = await taskDone(server, rr.body.task.id);
    expect(rt.status, rt.error).toBe('succeeded');
    expect(await sameContent(path.join(server.dataDir, 'disks', 'rest2-disk0.qcow2'), expectIncr)).toBe(true);
  }, 180_000);

  it('deleting a middle incremental re-bases its child onto the full', async () => {
    const f = makeBackup('bk2-full', null, [[0x51, 0, 1 << 20]]);
    const a = makeBackup('bk2-a', 'bk2-full', [[0x52, 1 << 20, 1 << 20]]);
    const b = makeBackup('bk2-b', 'bk2-a', [[0x53, 2 << 20, 512 << 10]]);
    const want = expected('bk2-b', path.join(b, 'disk0.qcow2'));
    for (const dir of [f, a, b]) await importOk(dir);
    const t = await taskDone(server, (await server.api('DELETE', `/backups/${uid('bk2-a')}`)).body.task.id);
    expect(t.status, t.error).toBe('succeeded');
    expect(fs.existsSync(a)).toBe(false);
    const m = JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ kind: 'incremental', parent: uid('bk2-full') });
    expect(m.disks[0].backing).toBe(`../${uid('bk2-full')}/disk0.qcow2`);
    expect(backingOf(path.join(b, 'disk0.qcow2'))).toBe(`../${uid('bk2-full')}/disk0.qcow2`);
    expect(await sameContent(path.join(b, 'disk0.qcow2'), want)).toBe(true);
    // Still an overlay: much smaller than the full it backs onto.
    expect(fs.statSync(path.join(b, 'disk0.qcow2')).size).toBeLessThan(fs.statSync(path.join(f, 'disk0.qcow2')).size * 4);
    const v = await taskDone(server, (await server.api('POST', `/backups/${uid('bk2-b')}/verify`)).body.task.id);
    expect(v.status, v.error).toBe('succeeded');
  }, 180_000);

  it('verify finds a flipped byte: state corrupt, the task names the file', async () => {
    const file = path.join(incr, 'disk0.qcow2');
    const fd = fs.openSync(file, 'r+');
    const buf = Buffer.alloc(1);
    const at = fs.fstatSync(fd).size - 1000;
    fs.readSync(fd, buf, 0, 1, at);
    buf[0] = buf[0] ^ 0xff;
    fs.writeSync(fd, buf, 0, 1, at);
    fs.closeSync(fd);
    const t = await taskDone(server, (await server.api('POST', `/backups/${uid('bk-incr')}/verify`)).body.task.id);
    expect(t.status).toBe('failed');
    expect(t.error).toContain('disk0.qcow2');
    expect(t.error).toMatch(/sha256/);
    // Corrupt: no restore from it.
    const r = await server.api('POST', `/backups/${uid('bk-incr')}/restore`, { as: 'new', name: 'rest3' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('IMAGE_NOT_ALLOWED');
  }, 60_000);
});
