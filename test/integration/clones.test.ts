/**
 * Clones and backing chains (issue 10) with real qemu-img, qemu-nbd and QEMU: a linked clone boots
 * the test guest and writes its own marker while the base image stays byte-for-byte the same; the
 * base cannot be deleted or started; a full clone is a self-contained, equal, independent copy; a
 * server killed in the middle of a full clone leaves a failed "interrupted" task and nothing else,
 * and the source it had lent to qm-img for the copy is given back by the restart.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeScriptDisk } from '../guest/index.js';
import { EventLog, makeDataDir, serialLog, startGuestServer, TestServer, waitFor } from './harness.js';

const run = promisify(execFile);
/** Long commands run asynchronously: a blocked test process would let the kit's keep-alive sockets go stale. */
const sha256sum = async (file: string) => (await run('sha256sum', [file])).stdout.split(' ')[0];
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
/** What the guest sees at `offset` of the image (qemu-io reads through the format and the chain). */
function guestBytes(file: string, format: string, offset: number, length: number): string {
  const out = execFileSync('qemu-io', ['-r', '-U', '-f', format, '-c', `read -v ${offset} ${length}`, file], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => /^[0-9a-f]{8}:/.test(l))
    .map((l) => l.slice(l.lastIndexOf('  ') + 2))
    .join('');
}
function backingOf(file: string): string | null {
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as Record<string, unknown>;
  return (info['backing-filename'] as string | undefined) ?? null;
}
async function taskDone(server: TestServer, id: string, timeoutMs = 120_000): Promise<any> {
  return waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return t.status !== 'queued' && t.status !== 'running' ? t : null;
  }, timeoutMs, `task ${id} to end`);
}

/** qemu-img's socket dirs in the temp dir. */
const imgDirs = () => new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('qm-img-')));

describe('clones and backing chains', () => {
  let server: TestServer;
  let events: EventLog;
  let isoPath: string;
  let base: any;
  let src: any;

  beforeAll(async () => {
    ({ server, events, isoPath } = await startGuestServer());
    const r = await server.api('POST', '/disks', { name: 'golden', size: 1, format: 'qcow2' });
    expect(r.status).toBe(201);
    await taskDone(server, r.body.task.id);
    base = (await server.api('GET', `/disks/${r.body.disk.id}`)).body.disk;
    // The golden image's content: a pattern the clones must see.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x42 1M 64K', base.path]);
    src = (await server.api('POST', '/vms', { name: 'source', cpus: 1, memory: 128 })).body.vm;
    expect((await server.api('POST', `/vms/${src.id}/disks/attach`, { diskPath: base.path })).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await events?.close();
    await server?.dispose();
  });

  it('a linked clone boots and writes its own marker; the base image is unchanged and can be neither deleted nor started', async () => {
    const before = sha256(base.path);
    const r = await server.api('POST', `/vms/${src.id}/clone`, { name: 'linked', mode: 'linked' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const task = await taskDone(server, r.body.task.id);
    expect(task).toMatchObject({ kind: 'vm.clone', status: 'succeeded', error: null });
    const clone = (await server.api('GET', `/vms/${task.result.vm}`)).body.vm;
    expect(clone).toMatchObject({ name: 'linked', cpus: 1, memory: 128 });
    expect(clone.mac).not.toBe(src.mac);
    expect(clone.vnc_port).not.toBe(src.vnc_port);
    const child = (await server.api('GET', `/disks/${clone.disks[0].diskId}`)).body.disk;
    expect(child).toMatchObject({ name: 'linked-disk0', format: 'qcow2', backingFile: base.path, children: [] });
    expect(backingOf(child.path)).toBe(base.path);
    expect((await server.api('GET', `/disks/${base.id}`)).body.disk.children).toEqual([child.id]);

    // Boot the clone with a script disk that writes a marker of its own into its disk.
    const script = path.join(server.dataDir, 'disks', 'mark.img');
    await writeScriptDisk(script, "printf 'LINKEDCLONEOWNMARKER' | dd of=/dev/vda bs=512 seek=16 conv=notrunc 2>/dev/null; sync; echo MARK_WRITTEN\n");
    expect((await server.api('POST', `/vms/${clone.id}/disks/attach`, { diskPath: script })).status).toBe(200);
    expect((await server.api('POST', `/vms/${clone.id}/iso/mount`, { isoPath })).status).toBe(200);
    const started = await server.api('POST', `/vms/${clone.id}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await waitFor(() => serialLog(server.dataDir, clone.id).includes('TESTGUEST_SCRIPT_DONE'), 90_000, 'the clone to run its script');
    expect(serialLog(server.dataDir, clone.id)).toContain('MARK_WRITTEN');
    expect((await server.api('POST', `/vms/${clone.id}/stop`)).status).toBe(200);

    expect(guestBytes(child.path, 'qcow2', 16 * 512, 20)).toBe('LINKEDCLONEOWNMARKER');
    expect(guestBytes(child.path, 'qcow2', 1 << 20, 4)).toBe('BBBB'); // the base's data, read through the chain
    expect(guestBytes(base.path, 'qcow2', 16 * 512, 4)).toBe('....');
    expect(sha256(base.path)).toBe(before);

    // The base is read by the clone: starting its VM (a write) and deleting it are refused, and it stays.
    const refusedStart = await server.api('POST', `/vms/${src.id}/start`);
    expect(refusedStart.status).toBe(409);
    expect(refusedStart.body).toMatchObject({ code: 'DISK_HAS_CHILDREN', error: expect.stringContaining('linked-disk0') });
    expect((await server.api('POST', `/vms/${src.id}/disks/detach`, { diskPath: base.path })).status).toBe(200);
    const refusedDelete = await server.api('DELETE', `/disks/${base.id}`);
    expect(refusedDelete.status).toBe(409);
    expect(refusedDelete.body).toMatchObject({ code: 'DISK_HAS_CHILDREN', error: expect.stringContaining('linked-disk0') });
    expect(fs.existsSync(base.path)).toBe(true);
    expect(sha256(base.path)).toBe(before);
    expect((await server.api('POST', `/vms/${src.id}/disks/attach`, { diskPath: base.path })).status).toBe(200);
  }, 180_000);

  it('a full clone is a self-contained copy, equal at clone time and independent afterwards', async () => {
    const r = await server.api('POST', `/vms/${src.id}/clone`, { name: 'full', mode: 'full' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const task = await taskDone(server, r.body.task.id);
    expect(task, JSON.stringify(task)).toMatchObject({ kind: 'vm.clone', status: 'succeeded', progress: 1, bytesTotal: 1024 ** 3, bytesDone: 1024 ** 3 });
    const clone = (await server.api('GET', `/vms/${task.result.vm}`)).body.vm;
    const copy = (await server.api('GET', `/disks/${clone.disks[0].diskId}`)).body.disk;
    expect(copy).toMatchObject({ name: 'full-disk0', format: 'qcow2', backingFile: null, children: [], attachedTo: clone.id });
    expect(backingOf(copy.path)).toBe(null);
    expect(fs.statSync(copy.path)).toMatchObject({ uid: 0, mode: 0o100600 });
    execFileSync('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'qcow2', base.path, copy.path]);
    // A write to the copy changes nothing of the source (and the other way round).
    const baseSum = sha256(base.path);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x43 1M 64K', copy.path]);
    expect(guestBytes(copy.path, 'qcow2', 1 << 20, 4)).toBe('CCCC');
    expect(guestBytes(base.path, 'qcow2', 1 << 20, 4)).toBe('BBBB');
    expect(sha256(base.path)).toBe(baseSum);
    // The disk clone route makes the same kind of copy of one disk.
    const d = await server.api('POST', `/disks/${copy.id}/clone`, { name: 'copy-of-copy', mode: 'full' });
    expect(d.status).toBe(202);
    const dt = await taskDone(server, d.body.task.id);
    expect(dt).toMatchObject({ kind: 'disk.clone', status: 'succeeded' });
    const cc = (await server.api('GET', `/disks/${dt.result.disk}`)).body.disk;
    expect(guestBytes(cc.path, 'qcow2', 1 << 20, 4)).toBe('CCCC');
  }, 180_000);
});

/** Pids of the qemu-img and qemu-nbd processes whose parent (or grandparent) is `pid`. */
function toolsUnder(pid: number): number[] {
  const found: number[] = [];
  const parent = (p: string) => Number(fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) \S+ /s, '').split(' ')[0]);
  for (const p of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      if (comm !== 'qemu-img' && comm !== 'qemu-nbd') continue;
      const state = fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
      if (state === 'Z') continue;
      const pp = parent(p);
      if (pp === pid || parent(String(pp)) === pid) found.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('a server killed in the middle of a full clone', () => {
  const dataDir = makeDataDir();
  const server = new TestServer(dataDir);
  afterAll(async () => {
    await server.dispose();
  });

  it('leaves the task failed "interrupted", no partial file, no new disk or VM, no tool still running', async () => {
    await server.start();
    const r = await server.api('POST', '/disks', { name: 'big', size: 4, format: 'raw' });
    await taskDone(server, r.body.task.id);
    const big = (await server.api('GET', `/disks/${r.body.disk.id}`)).body.disk;
    // 3 GiB of allocated, non-zero data: a copy that takes a while.
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1G', '-c', 'write -P 0x5b 1G 1G', '-c', 'write -P 0x5c 2G 1G', big.path]);
    const bigSum = await sha256sum(big.path);
    const stat = (f: string) => {
      const st = fs.statSync(f);
      return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
    };
    const bigOwner = stat(big.path);
    expect(bigOwner).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    const disksBefore = (await server.api('GET', '/disks')).body.disks;
    const imgDirsAtStart = imgDirs();
    const c = await server.api('POST', `/disks/${big.id}/clone`, { name: 'bigcopy', mode: 'full' });
    expect(c.status, JSON.stringify(c.body)).toBe(202);
    const part = path.join(dataDir, 'disks', 'bigcopy.img.part');
    const running = await waitFor(async () => {
      const t = (await server.api('GET', `/tasks/${c.body.task.id}`)).body.task;
      return t.status === 'running' && t.bytesDone > 0 ? t : null;
    }, 60_000, 'the copy to make progress');
    expect(running.bytesDone).toBeLessThan(running.bytesTotal);
    expect(fs.existsSync(part)).toBe(true);
    const tools = toolsUnder(server.proc!.pid!);
    expect(tools.length).toBeGreaterThanOrEqual(1); // qemu-img (under setpriv's exec); no qemu-nbd for a lent file
    // The source is lent read-only to qm-img's group for the copy, and recorded with what it was.
    const imgGid = Number(execFileSync('id', ['-g', 'qm-img'], { encoding: 'utf8' }).trim());
    expect(stat(big.path)).toEqual({ uid: 0, gid: imgGid, mode: 0o640 });
    const record = JSON.parse(fs.readFileSync(path.join(dataDir, 'run', 'img-lent.json'), 'utf8'));
    expect(record).toEqual([expect.objectContaining({ path: big.path, ...bigOwner, ino: fs.statSync(big.path).ino })]);

    // The socket dir of the copy the kill cuts short (the server cannot remove it any more): removed below.
    const cutShort = [...imgDirs()].filter((d) => !imgDirsAtStart.has(d));
    await server.kill('SIGKILL');
    await waitFor(() => tools.every((p) => !fs.existsSync(`/proc/${p}`) || fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '')[0] === 'Z'), 10_000, 'the tools to die with the server');

    await server.start();
    const t = (await server.api('GET', `/tasks/${c.body.task.id}`)).body.task;
    expect(t).toMatchObject({ status: 'failed', error: 'Interrupted by a server restart' });
    expect(fs.existsSync(part)).toBe(false);
    expect(fs.readdirSync(path.join(dataDir, 'disks')).sort()).toEqual(['big.img']);
    expect((await server.api('GET', '/disks')).body.disks).toEqual(disksBefore);
    expect((await server.api('GET', '/vms')).body.vms).toEqual([]);
    expect(await sha256sum(big.path)).toBe(bigSum);
    // The restart gave the lent file back exactly as it was.
    expect(stat(big.path)).toEqual(bigOwner);
    expect(fs.existsSync(path.join(dataDir, 'run', 'img-lent.json'))).toBe(false);
    expect(server.log).toContain('were given back');
    for (const d of cutShort) fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
  }, 240_000);
});
