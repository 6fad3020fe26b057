/**
 * Backups, engine (issue 13), on real QEMU, qemu-img and qemu-nbd with the test guest. One VM, one
 * boot shared by every test: a managed 1 GiB qcow2 data disk (vda) and a script disk (vdb). The
 * script writes marker A (at 1 MiB) and 16 MiB of random data (from 8 MiB); once the CD medium is
 * gone (the test unmounts it) marker B (at 2 MiB); once a medium is back, marker C (at 3 MiB); it
 * ticks on the serial log all along, so the test decides when each marker is written and sees the
 * guest run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_MARKER, writeScriptDisk } from '../guest/index.js';
import { serialLog, startGuestServer, waitFor, type EventLog, type TestServer } from './harness.js';

const SCRIPT = `
M=/dev/vda
put() { printf '%-511s\\n' "$2" | dd of=$M bs=512 seek=$1 count=1 conv=notrunc,fsync 2>/dev/null; sync; }
medium() { [ "$(dd if=/dev/sr0 bs=2048 count=1 2>/dev/null | wc -c | tr -d ' ')" -gt 0 ]; }
dd if=/dev/urandom of=$M bs=1M seek=8 count=16 conv=notrunc,fsync 2>/dev/null
put 2048 BKMARK_A; echo "WROTE_A"
n=0
while medium; do n=$((n+1)); echo "TICK $n"; sleep 1; done
put 4096 BKMARK_B; echo "WROTE_B"
until medium; do n=$((n+1)); echo "TICK $n"; sleep 1; done
put 6144 BKMARK_C; echo "WROTE_C"
while :; do n=$((n+1)); echo "TICK $n"; sleep 1; done
`;

let server: TestServer;
let events: EventLog;
let isoPath: string;
let vmId: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bk-'));

const log = () => serialLog(server.dataDir, vmId);

async function waitLog(what: string | RegExp, from = 0, timeoutMs = 90_000): Promise<string> {
  return waitFor(
    () => {
      const rest = log().slice(from);
      return (typeof what === 'string' ? rest.includes(what) : what.test(rest)) && rest;
    },
    timeoutMs,
    `${String(what)} in the serial log`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nserial log:\n${log().slice(-3000)}`);
  });
}

async function task(r: { status: number; body: any }): Promise<any> {
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const id = r.body.task.id as string;
  return waitFor(
    async () => {
      const t = (await server.api('GET', `/tasks/${id}`)).body.task;
      return ['succeeded', 'failed', 'cancelled'].includes(t.status) && t;
    },
    180_000,
    `task ${id}`,
  );
}

/** The three marker sectors of a raw image (qemu-img convert of a backup file, no server). */
function markers(backupFile: string): string[] {
  const raw = path.join(tmp, `m-${path.basename(path.dirname(backupFile))}.raw`);
  fs.rmSync(raw, { force: true });
  execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', backupFile, raw], { stdio: 'pipe' });
  const fd = fs.openSync(raw, 'r');
  try {
    return [1, 2, 3].map((mib) => {
      const b = Buffer.alloc(8);
      fs.readSync(fd, b, 0, 8, mib << 20);
      return b.toString('latin1');
    });
  } finally {
    fs.closeSync(fd);
    fs.rmSync(raw, { force: true });
  }
}

const ticks = () => [...log().matchAll(/TICK (\d+)/g)].length;
const status = async () => (await server.api('GET', `/vms/${vmId}`)).body.vm.status as string;

beforeAll(async () => {
  ({ server, events, isoPath } = await startGuestServer());
  vmId = (await server.api('POST', '/vms', { name: 'backed', cpus: 1, memory: 128 })).body.vm.id;
  const created = await server.api('POST', '/disks', { name: 'bkdata', size: 1, format: 'qcow2' });
  expect(created.status).toBe(201);
  await waitFor(async () => (await server.api('GET', `/disks/${created.body.disk.id}`)).body.disk?.status === 'ready', 20_000, 'the data disk');
  const raw = path.join(tmp, 'script.raw');
  await writeScriptDisk(raw, SCRIPT);
  const scriptDisk = path.join(server.dataDir, 'disks', 'bkscript.qcow2');
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, scriptDisk]);
  fs.chmodSync(scriptDisk, 0o600);
  expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: created.body.disk.path })).status).toBe(200);
  expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: scriptDisk, format: 'qcow2' })).status).toBe(200);
  expect((await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath })).status).toBe(200);
  const r = await server.api('POST', `/vms/${vmId}/start`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  await waitLog(READY_MARKER);
  await waitLog('WROTE_A');
  // The test guest runs qemu-ga (issue 14): live backups freeze its file systems once it answers.
  await waitFor(async () => (await server.api('GET', `/vms/${vmId}`)).body.vm.agent.connected === true, 90_000, 'the guest agent answers');
}, 180_000);

afterAll(async () => {
  await events?.close();
  await server?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('live backups of a running VM', () => {
  it('full (A), incremental (A+B), then C: the files alone give A / A+B, the incremental is small, the VM ran throughout', async () => {
    const t1 = await task(await server.api('POST', `/vms/${vmId}/backups`, {}));
    expect(t1, JSON.stringify(t1)).toMatchObject({ status: 'succeeded', kind: 'backup.create', result: { kind: 'full' } });
    const full = (await server.api('GET', `/backups/${t1.result.backup}`)).body.backup;
    expect(full).toMatchObject({ kind: 'full', parent: null, state: 'ok', frozen: true, target: 'default' }); // frozen through the guest agent
    expect(await status()).toBe('running');

    const atB = log().length;
    expect((await server.api('POST', `/vms/${vmId}/iso/unmount`)).status).toBe(200);
    await waitLog('WROTE_B', atB);
    const t2 = await task(await server.api('POST', `/vms/${vmId}/backups`, {}));
    expect(t2, JSON.stringify(t2)).toMatchObject({ status: 'succeeded', result: { kind: 'incremental' } });
    const inc = (await server.api('GET', `/backups/${t2.result.backup}`)).body.backup;
    expect(inc).toMatchObject({ kind: 'incremental', parent: full.id });
    expect(inc.disks[0].backing).toBe(`../${full.id}/disk0.qcow2`);

    const atC = log().length;
    expect((await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath })).status).toBe(200);
    await waitLog('WROTE_C', atC);

    const dir = (id: string) => path.join(server.dataDir, 'backups', vmId, id);
    const incFile = path.join(dir(inc.id), 'disk0.qcow2');
    const fullFile = path.join(dir(full.id), 'disk0.qcow2');
    // qemu-img alone: the incremental's header names its parent's file, relative, format recorded
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', incFile], { encoding: 'utf8' }));
    expect(info['backing-filename']).toBe(`../${full.id}/disk0.qcow2`);
    expect(info['backing-filename-format']).toBe('qcow2');
    expect(markers(incFile).map((m) => m.slice(0, 8))).toEqual(['BKMARK_A', 'BKMARK_B', '\0'.repeat(8)]);
    expect(markers(fullFile).map((m) => m.slice(0, 8))).toEqual(['BKMARK_A', '\0'.repeat(8), '\0'.repeat(8)]);
    const incSize = fs.statSync(incFile).blocks * 512;
    const fullSize = fs.statSync(fullFile).blocks * 512;
    expect(fullSize).toBeGreaterThan(16 << 20);
    expect(incSize).toBeLessThan(fullSize / 4);
    // The sparse tail a live backup's file had (an NBD export cannot grow) is cut where its data ends.
    expect(fs.statSync(incFile).size).toBeLessThan(256 << 20);
    expect(fs.statSync(fullFile).size).toBeLessThan(512 << 20);
    // sha256 and manifest as listed
    const manifest = JSON.parse(fs.readFileSync(path.join(dir(inc.id), 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ schema: 1, id: inc.id, kind: 'incremental', parent: full.id, frozen: true, vm: { id: vmId } });
    expect(manifest.disks[0].sha256).toBe(execFileSync('sha256sum', [incFile], { encoding: 'utf8' }).split(' ')[0]);
    expect(events.events.filter((e) => e.type === 'backup.created').map((e) => e.backup.id)).toEqual([full.id, inc.id]);

    // Through the API: both verify, and restored as new VMs the incremental gives A+B (not C), the full A only.
    for (const b of [full, inc]) {
      const v = await task(await server.api('POST', `/backups/${b.id}/verify`));
      expect(v, JSON.stringify(v)).toMatchObject({ status: 'succeeded' });
    }
    for (const [b, name, want] of [
      [inc, 'from-inc', ['BKMARK_A', 'BKMARK_B', '\0'.repeat(8)]],
      [full, 'from-full', ['BKMARK_A', '\0'.repeat(8), '\0'.repeat(8)]],
    ] as const) {
      const t = await task(await server.api('POST', `/backups/${b.id}/restore`, { as: 'new', name }));
      expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded', kind: 'backup.restore' });
      const restored = (await server.api('GET', '/vms')).body.vms.find((v: { name: string }) => v.name === name);
      expect(restored.id).not.toBe(vmId);
      const disk0 = restored.disks[0].path as string;
      expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk0], { encoding: 'utf8' }))['backing-filename']).toBeUndefined();
      expect(markers(disk0).map((m) => m.slice(0, 8))).toEqual(want);
    }

    // the VM ran throughout: running over the API, and the guest keeps ticking
    expect(await status()).toBe('running');
    const before = ticks();
    await waitFor(() => ticks() > before + 1, 30_000, 'more ticks');
  }, 300_000);

  it('a schedule with keepLast 2, run 4 times: 2 backups of the VM remain and each still gives A+B+C with qemu-img alone', async () => {
    const sc = await server.api('POST', '/backup-schedules', { name: 'nightly', vms: [vmId], every: 'daily', at: '03:00', retention: { keepLast: 2 } });
    expect(sc.status, JSON.stringify(sc.body)).toBe(201);
    for (let i = 0; i < 4; i++) {
      const run = await task(await server.api('POST', `/backup-schedules/${sc.body.schedule.id}/run`));
      expect(run, JSON.stringify(run)).toMatchObject({ status: 'succeeded', kind: 'backup.schedule' });
    }
    const kept = (await server.api('GET', `/backups?vm=${vmId}&target=default`)).body.backups as Array<{ id: string; kind: string; parent: string | null; disks: Array<{ file: string }> }>;
    expect(kept).toHaveLength(2);
    const ids = new Set(kept.map((b) => b.id));
    for (const b of kept) {
      if (b.parent !== null) expect(ids.has(b.parent), `${b.id} backs onto a kept backup`).toBe(true);
      const file = path.join(server.dataDir, 'backups', vmId, b.id, 'disk0.qcow2');
      expect(markers(file).map((m) => m.slice(0, 8))).toEqual(['BKMARK_A', 'BKMARK_B', 'BKMARK_C']);
      expect(await task(await server.api('POST', `/backups/${b.id}/verify`))).toMatchObject({ status: 'succeeded' });
    }
    // only the kept backups' directories are left
    expect(fs.readdirSync(path.join(server.dataDir, 'backups', vmId)).sort()).toEqual([...ids].sort());
    expect((await server.api('DELETE', `/backup-schedules/${sc.body.schedule.id}`)).status).toBeLessThan(300);
    expect(await status()).toBe('running');
  }, 300_000);

  it('a full target (8 MiB tmpfs): the backup fails with "no space", nothing is left in it, the VM is untouched', async () => {
    const mnt = path.join(tmp, 'small');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mnt]);
    try {
      expect((await server.api('POST', '/backup-targets', { name: 'tiny', path: mnt })).status).toBe(201);
      const listed = (await server.api('GET', '/backups')).body.backups.length;
      const t = await task(await server.api('POST', `/vms/${vmId}/backups`, { target: 'tiny' }));
      expect(t.status).toBe('failed');
      expect(t.error).toMatch(/no space/i);
      expect(fs.readdirSync(path.join(mnt, vmId))).toEqual([]);
      expect((await server.api('GET', '/backups')).body.backups).toHaveLength(listed);
      expect(events.events.some((e) => e.type === 'backup.failed' && e.task === t.id && e.vm === vmId && /no space/i.test(e.error))).toBe(true);
      expect(await status()).toBe('running');
      const before = ticks();
      await waitFor(() => ticks() > before, 30_000, 'more ticks');
      expect((await server.api('DELETE', '/backup-targets/tiny')).status).toBe(200);
    } finally {
      execFileSync('umount', [mnt]);
    }
  }, 120_000);

  it('bad target paths are refused with nothing changed', async () => {
    const names = async () => (await server.api('GET', '/backup-targets')).body.targets.map((t: any) => `${t.name}=${t.path}`);
    const before = await names();
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    const cases: Array<[string, number, string]> = [
      [file, 400, 'VALIDATION'],
      ['relative/dir', 400, 'VALIDATION'],
      [path.join(server.dataDir, 'disks'), 400, 'PATH_NOT_ALLOWED'],
    ];
    for (const [p, st, code] of cases) {
      const r = await server.api('POST', '/backup-targets', { name: 'bad', path: p });
      expect({ status: r.status, code: r.body.code }).toEqual({ status: st, code });
    }
    expect(await names()).toEqual(before);
  });

  it('SIGKILL of the server mid-backup: after restart the task failed "interrupted", nothing listed or left, the VM runs, the next backup works', async () => {
    const listed = (await server.api('GET', '/backups')).body.backups.length;
    // 64 KiB/s for ~17 MiB: the copy is still going when it has reported progress
    const r = await server.api('POST', `/vms/${vmId}/backups`, { mode: 'full', speedLimit: 65536 });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const id = r.body.task.id as string;
    await waitFor(async () => {
      const t = (await server.api('GET', `/tasks/${id}`)).body.task;
      return t.status === 'running' && t.bytesDone > 0;
    }, 60_000, 'backup progress');
    expect(fs.readdirSync(path.join(server.dataDir, 'backups', vmId)).some((n) => n.startsWith('.partial-'))).toBe(true);
    await server.kill('SIGKILL');
    await server.start();
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    expect(t).toMatchObject({ status: 'failed', error: expect.stringMatching(/interrupted/i) });
    expect((await server.api('GET', '/backups')).body.backups).toHaveLength(listed);
    expect(fs.readdirSync(path.join(server.dataDir, 'backups', vmId)).filter((n) => n.startsWith('.partial-'))).toEqual([]);
    expect(fs.readdirSync(path.join(server.dataDir, 'run', vmId)).filter((n) => n.startsWith('bk-'))).toEqual([]);
    expect(await status()).toBe('running');
    const next = await task(await server.api('POST', `/vms/${vmId}/backups`, {}));
    expect(next, JSON.stringify(next)).toMatchObject({ status: 'succeeded' });
    // the bitmap of the last listed backup survived in the running QEMU: the next one is incremental
    expect(next.result.kind).toBe('incremental');
    const before = ticks();
    await waitFor(() => ticks() > before, 30_000, 'more ticks');
  }, 240_000);
});
