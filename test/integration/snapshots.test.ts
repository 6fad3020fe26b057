/**
 * Snapshots on real QEMU and real qemu-img, with the test guest. One VM with two qcow2 disks: the
 * data disk (managed, vda, which also holds the RAM state) and a script disk (vdb). The script:
 * marker A goes to the data disk (at 1 MiB) if neither marker is there; then the guest ticks
 * (`TICK n` on the serial log, once a second) while its CD drive has a medium; once the medium is
 * gone (the test ejects it) it writes marker B and ticks on. So the test decides when B is
 * written, and the serial log shows where the guest is.
 *
 * Stopped VM: boot (A written), power off, snapshot (qemu-img), boot (A seen), eject (B written),
 * power off, revert: A is on the disk, B is not. Running VM: boot, snapshot with memory (QMP
 * snapshot-save), eject (B written), insert the medium again, revert (snapshot-load): the guest
 * goes on from the snapshot moment (its ticks count again from there, no second B), and once
 * stopped the disk has A, not B.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_MARKER, writeScriptDisk } from '../guest/index.js';
import { serialLog, startGuestServer, waitFor, type TestServer } from './harness.js';

const SCRIPT = `
M=/dev/vda
mark() { dd if=$M bs=512 skip=2048 count=1 2>/dev/null | head -c 10; }
put() { printf '%-511s\\n' "$1" | dd of=$M bs=512 seek=2048 count=1 conv=notrunc,fsync 2>/dev/null; sync; }
medium() { [ "$(dd if=/dev/sr0 bs=2048 count=1 2>/dev/null | wc -c | tr -d ' ')" -gt 0 ]; }
case "$(mark)" in
  SNAPMARK_A) echo "SAW_A" ;;
  SNAPMARK_B) echo "SAW_B" ;;
  *) put SNAPMARK_A; echo "WROTE_A" ;;
esac
n=0
miss=0
while [ $miss -lt 2 ]; do
  if medium; then miss=0; else miss=$((miss+1)); fi
  n=$((n+1)); echo "TICK $n"; sleep 1
done
put SNAPMARK_B; echo "WROTE_B"
while :; do n=$((n+1)); echo "TICK $n"; sleep 1; done
`;

let server: TestServer;
let isoPath: string;
let vmId: string;
let dataDisk: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-snap-'));

/** The marker the guest wrote at 1 MiB of the data disk (qemu-img reads the qcow2 image). */
function marker(): string {
  const out = path.join(tmp, 'sector.raw');
  fs.rmSync(out, { force: true });
  // qemu-img dd counts `count` from the start of the image, skipped blocks included.
  execFileSync('qemu-img', ['dd', '-U', '-f', 'qcow2', '-O', 'raw', 'bs=512', 'skip=2048', 'count=2049', `if=${dataDisk}`, `of=${out}`], { stdio: 'pipe' });
  const sector = fs.readFileSync(out, 'latin1');
  expect(sector.length).toBe(512);
  return sector.slice(0, 10);
}

function imageSnapshots(file: string): Array<{ name: string; 'vm-state-size': number }> {
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as { snapshots?: any[] };
  return info.snapshots ?? [];
}

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
  const done = await waitFor(
    async () => {
      const t = (await server.api('GET', `/tasks/${id}`)).body.task;
      return ['succeeded', 'failed', 'cancelled'].includes(t.status) && t;
    },
    120_000,
    `task ${id}`,
  );
  return done;
}

async function boot(): Promise<void> {
  expect((await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath })).status).toBe(200);
  const r = await server.api('POST', `/vms/${vmId}/start`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  await waitLog(READY_MARKER);
}

async function powerOff(): Promise<void> {
  expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
}

const ticks = (text: string) => [...text.matchAll(/TICK (\d+)/g)].map((m) => Number(m[1]));

beforeAll(async () => {
  ({ server, isoPath } = await startGuestServer());
  const vm = (await server.api('POST', '/vms', { name: 'snappy', cpus: 1, memory: 128 })).body.vm;
  vmId = vm.id;
  const created = await server.api('POST', '/disks', { name: 'snapdata', size: 1, format: 'qcow2' });
  expect(created.status).toBe(201);
  dataDisk = created.body.disk.path;
  await waitFor(async () => (await server.api('GET', `/disks/${created.body.disk.id}`)).body.disk?.status === 'ready', 20_000, 'the data disk');
  const raw = path.join(tmp, 'script.raw');
  await writeScriptDisk(raw, SCRIPT);
  const scriptDisk = path.join(server.dataDir, 'disks', 'script.qcow2');
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, scriptDisk]);
  fs.chmodSync(scriptDisk, 0o600);
  expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: dataDisk })).status).toBe(200);
  const attached = await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: scriptDisk, format: 'qcow2' });
  expect(attached.status, JSON.stringify(attached.body)).toBe(200);
}, 120_000);

afterAll(async () => {
  await server?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('snapshots of a stopped VM (qemu-img on every disk)', () => {
  it('marker A, snapshot, marker B, revert: A is there and B is not', async () => {
    await boot();
    await waitLog('WROTE_A');
    await powerOff();
    expect(marker()).toBe('SNAPMARK_A');

    const t = await task(await server.api('POST', `/vms/${vmId}/snapshots`, { name: 'before-b', description: 'only A' }));
    expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded', kind: 'vm.snapshot', target: { vm: vmId } });
    const list = (await server.api('GET', `/vms/${vmId}/snapshots`)).body.snapshots;
    expect(list).toEqual([
      expect.objectContaining({ name: 'before-b', description: 'only A', vmState: false, parent: null, current: true, sizeBytes: 0 }),
    ]);
    // Both images hold it (the script disk too), as a disk-only internal snapshot.
    for (const f of list[0].disks) expect(imageSnapshots(f).map((s) => s.name)).toEqual(['before-b']);

    await boot();
    await waitLog('SAW_A');
    expect((await server.api('POST', `/vms/${vmId}/iso/unmount`)).status).toBe(200);
    await waitLog('WROTE_B');
    await powerOff();
    expect(marker()).toBe('SNAPMARK_B');

    const r = await task(await server.api('POST', `/vms/${vmId}/snapshots/before-b/revert`));
    expect(r, JSON.stringify(r)).toMatchObject({ status: 'succeeded', kind: 'vm.revert' });
    expect(marker()).toBe('SNAPMARK_A');
  }, 240_000);
});

describe('snapshots of a running VM (QMP jobs)', () => {
  it('with memory: after the revert the guest goes on from the snapshot moment, and the disk has A, not B', async () => {
    await boot();
    await waitLog('SAW_A');
    await waitLog(/TICK 2\b/);
    const t = await task(await server.api('POST', `/vms/${vmId}/snapshots`, { name: 'live-a', includeMemory: true }));
    expect(t, JSON.stringify(t)).toMatchObject({ status: 'succeeded' });
    const atSnapshot = Math.max(...ticks(log()));
    const snap = (await server.api('GET', `/vms/${vmId}/snapshots`)).body.snapshots.find((s: any) => s.name === 'live-a');
    expect(snap).toMatchObject({ vmState: true, parent: 'before-b', current: true });
    expect(snap.sizeBytes).toBeGreaterThan(0);
    expect(imageSnapshots(dataDisk).find((s) => s.name === 'live-a')?.['vm-state-size']).toBe(snap.sizeBytes);
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm.status).toBe('running');

    // A disk-only snapshot of a running VM cannot be reverted live: stop first.
    const diskOnly = await task(await server.api('POST', `/vms/${vmId}/snapshots`, { name: 'live-disks' }));
    expect(diskOnly, JSON.stringify(diskOnly)).toMatchObject({ status: 'succeeded' });
    expect(imageSnapshots(dataDisk).find((s) => s.name === 'live-disks')?.['vm-state-size']).toBe(0);
    const refused = await server.api('POST', `/vms/${vmId}/snapshots/live-disks/revert`);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'VM_NOT_STOPPED', error: expect.stringMatching(/stop VM snappy first/) });
    const gone = await task(await server.api('DELETE', `/vms/${vmId}/snapshots/live-disks`));
    expect(gone, JSON.stringify(gone)).toMatchObject({ status: 'succeeded', kind: 'vm.snapshot.delete' });
    expect(imageSnapshots(dataDisk).map((s) => s.name)).toEqual(['before-b', 'live-a']);

    expect((await server.api('POST', `/vms/${vmId}/iso/unmount`)).status).toBe(200);
    await waitLog('WROTE_B');
    expect(marker()).toBe('SNAPMARK_B');
    // The medium back in, so the guest, once back at the snapshot moment, sees it and writes no B.
    expect((await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath })).status).toBe(200);
    const lastTick = Math.max(...ticks(log()));

    const r = await task(await server.api('POST', `/vms/${vmId}/snapshots/live-a/revert`));
    expect(r, JSON.stringify(r)).toMatchObject({ status: 'succeeded', kind: 'vm.revert' });
    // A guest that ran on counts up; one put back to the snapshot counts again from there: the
    // first tick that is not higher than the one before it is where the revert shows.
    const drop = await waitFor(
      () => {
        const all = [...log().matchAll(/TICK (\d+)/g)];
        const i = all.findIndex((m, k) => k > 0 && Number(m[1]) <= Number(all[k - 1][1]));
        return i > 0 && all.length >= i + 3 && { first: Number(all[i][1]), at: all[i].index };
      },
      60_000,
      'the guest to count again from the snapshot',
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nserial log:\n${log().slice(-3000)}`);
    });
    expect(drop.first).toBeLessThanOrEqual(atSnapshot + 1);
    expect(drop.first).toBeLessThan(lastTick);
    expect(log().slice(drop.at)).not.toContain('WROTE_B');
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm.status).toBe('running');
    expect((await server.api('GET', `/vms/${vmId}/snapshots`)).body.snapshots.find((s: any) => s.current)?.name).toBe('live-a');

    await powerOff();
    expect(marker()).toBe('SNAPMARK_A');
  }, 240_000);

  it('a VM with a raw disk refuses snapshots with 409 naming the disk', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'rawvm', cpus: 1, memory: 64 })).body.vm;
    const disk = (await server.api('POST', '/disks', { name: 'rawdisk', size: 1, format: 'raw' })).body.disk;
    await waitFor(async () => (await server.api('GET', `/disks/${disk.id}`)).body.disk?.status === 'ready', 20_000, 'the raw disk');
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    const r = await server.api('POST', `/vms/${vm.id}/snapshots`, { name: 'nope' });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'SNAPSHOT_UNSUPPORTED', error: expect.stringContaining(`disk rawdisk (${disk.path}) is raw`) });
    expect((await server.api('GET', `/vms/${vm.id}/snapshots`)).body).toEqual({ snapshots: [] });
  });
});
