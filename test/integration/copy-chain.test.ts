/**
 * Full copies of backing chains and read-only lends (issue 10), with real qemu-img and a real server
 * (as root: qemu-img runs as the qm-img user): a full clone or a conversion of a linked clone whose
 * overlay changed some bytes is a flattened, self-contained image equal to what the linked clone
 * shows; every layer is given back exactly as it was (owner, group, mode); a chain whose middle
 * layer names a file outside the storage roots is refused with nothing left behind.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, TestServer, waitFor } from './harness.js';

function backingOf(file: string): string | null {
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as Record<string, unknown>;
  return (info['backing-filename'] as string | undefined) ?? null;
}
/** What the guest sees at `offset` (qemu-io reads through the format and the chain). */
function guestBytes(file: string, format: string, offset: number, length: number): string {
  const out = execFileSync('qemu-io', ['-r', '-U', '-f', format, '-c', `read -v ${offset} ${length}`, file], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => /^[0-9a-f]{8}:/.test(l))
    .map((l) => l.slice(l.lastIndexOf('  ') + 2))
    .join('');
}
const owner = (file: string) => {
  const st = fs.statSync(file);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
};
async function taskDone(server: TestServer, id: string): Promise<any> {
  return waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return t.status !== 'queued' && t.status !== 'running' ? t : null;
  }, 120_000, `task ${id} to end`);
}

describe('full copies of backing chains', () => {
  const dataDir = makeDataDir();
  const server = new TestServer(dataDir);
  let gold: any;
  let child: any;

  beforeAll(async () => {
    await server.start();
    const r = await server.api('POST', '/disks', { name: 'gold', size: 1, format: 'qcow2' });
    expect(r.status).toBe(201);
    await taskDone(server, r.body.task.id);
    gold = (await server.api('GET', `/disks/${r.body.disk.id}`)).body.disk;
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x42 1M 64K', '-c', 'write -P 0x41 8M 64K', gold.path]);
    const l = await server.api('POST', `/disks/${gold.id}/clone`, { name: 'child', mode: 'linked' });
    expect(l.status, JSON.stringify(l.body)).toBe(202);
    const lt = await taskDone(server, l.body.task.id);
    expect(lt.status, JSON.stringify(lt)).toBe('succeeded');
    child = (await server.api('GET', `/disks/${lt.result.disk}`)).body.disk;
    // The overlay changes some bytes over the base's data, and adds some of its own.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x43 1M 4K', '-c', 'write -P 0x44 20M 4K', child.path]);
  }, 120_000);

  afterAll(async () => {
    await server.dispose();
  });

  it('a full clone of a linked clone is flattened: no backing file, equal to what the linked clone shows; every layer given back as it was', async () => {
    expect(backingOf(child.path)).toBe(gold.path);
    const before = { gold: owner(gold.path), child: owner(child.path) };
    expect(before.gold).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    const r = await server.api('POST', `/disks/${child.id}/clone`, { name: 'flat', mode: 'full' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t, JSON.stringify(t)).toMatchObject({ kind: 'disk.clone', status: 'succeeded', progress: 1, bytesTotal: 1024 ** 3 });
    const flat = (await server.api('GET', `/disks/${t.result.disk}`)).body.disk;
    expect(flat).toMatchObject({ name: 'flat', format: 'qcow2', backingFile: null, children: [] });
    expect(backingOf(flat.path)).toBe(null);
    expect(owner(flat.path)).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    execFileSync('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'qcow2', child.path, flat.path]);
    expect(guestBytes(flat.path, 'qcow2', 1 << 20, 4)).toBe('CCCC'); // the overlay's bytes
    expect(guestBytes(flat.path, 'qcow2', (1 << 20) + 4096, 4)).toBe('BBBB'); // the base's, under them
    expect(guestBytes(flat.path, 'qcow2', 8 << 20, 4)).toBe('AAAA');
    expect(guestBytes(flat.path, 'qcow2', 20 << 20, 4)).toBe('DDDD');
    // Each layer went back exactly as it was, and nothing is recorded as lent any more.
    expect({ gold: owner(gold.path), child: owner(child.path) }).toEqual(before);
    expect(fs.existsSync(path.join(dataDir, 'run', 'img-lent.json'))).toBe(false);
    // The base's children are still the linked clone only; the copy is independent of the chain.
    expect((await server.api('GET', `/disks/${gold.id}`)).body.disk.children).toEqual([child.id]);
  }, 120_000);

  it('a conversion of a linked clone is flattened too (qcow2 chain → raw)', async () => {
    const r = await server.api('POST', `/disks/${child.id}/convert`, { name: 'flatraw', format: 'raw' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const t = await taskDone(server, r.body.task.id);
    expect(t, JSON.stringify(t)).toMatchObject({ kind: 'disk.convert', status: 'succeeded' });
    const raw = (await server.api('GET', `/disks/${t.result.disk}`)).body.disk;
    expect(raw).toMatchObject({ format: 'raw', backingFile: null });
    execFileSync('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'raw', child.path, raw.path]);
    expect(owner(gold.path)).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    expect(owner(child.path)).toEqual({ uid: 0, gid: 0, mode: 0o600 });
  }, 120_000);

  it('a chain whose middle layer points outside the storage roots is refused, with nothing left', async () => {
    const disks = path.join(dataDir, 'disks');
    const outside = path.join(dataDir, 'outside.qcow2'); // the data dir itself is no storage root
    const base = path.join(disks, 'u-base.qcow2');
    const mid = path.join(disks, 'u-mid.qcow2');
    const top = path.join(disks, 'u-top.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', outside, '64M']);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, mid]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', mid, top]);
    const vm = (await server.api('POST', '/vms', { name: 'chained', cpus: 1, memory: 64 })).body.vm;
    const a = await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: top, format: 'qcow2' });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    // Now the middle layer names a file outside the roots.
    execFileSync('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', outside, mid]);
    const files = fs.readdirSync(disks).sort();
    const disksBefore = (await server.api('GET', '/disks')).body.disks;
    const tasksBefore = (await server.api('GET', '/tasks')).body.tasks.length;
    const sums = [outside, base, mid, top].map((f) => [owner(f), fs.readFileSync(f).toString('base64')]);
    const r = await server.api('POST', `/vms/${vm.id}/clone`, { name: 'chained-copy', mode: 'full' });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body).toMatchObject({ code: expect.stringMatching(/^(IMAGE_NOT_ALLOWED|PATH_NOT_ALLOWED)$/), error: expect.any(String), timestamp: expect.any(String) });
    expect(fs.readdirSync(disks).sort()).toEqual(files);
    expect((await server.api('GET', '/disks')).body.disks).toEqual(disksBefore);
    expect((await server.api('GET', '/tasks')).body.tasks.length).toBe(tasksBefore);
    expect((await server.api('GET', '/vms')).body.vms.map((v: any) => v.name)).not.toContain('chained-copy');
    expect([outside, base, mid, top].map((f) => [owner(f), fs.readFileSync(f).toString('base64')])).toEqual(sums);
    expect(fs.existsSync(path.join(dataDir, 'run', 'img-lent.json'))).toBe(false);
  }, 60_000);
});
