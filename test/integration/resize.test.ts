/**
 * Disk resize (issue 10) with real qemu-img and a real guest: a disk of no VM or of a stopped VM is
 * grown by qemu-img (checked with qemu-img info), a disk of the running guest is grown live over QMP
 * and the guest itself reports the new sector count; a resize that does not grow is refused with
 * nothing changed.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeScriptDisk } from '../guest/index.js';
import { EventLog, TestServer, serialLog, startGuestServer, waitFor } from './harness.js';

const GiB = 1024 ** 3;

let server: TestServer;
let events: EventLog;
let isoPath: string;

beforeAll(async () => {
  ({ server, events, isoPath } = await startGuestServer());
});

afterAll(async () => {
  await events?.close();
  await server?.dispose();
});

function virtualSize(file: string, format: string): number {
  const out = execFileSync('qemu-img', ['info', '-U', '--output=json', '-f', format, file], { encoding: 'utf8' });
  return (JSON.parse(out) as { 'virtual-size': number })['virtual-size'];
}

function digest(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function finished(taskId: string): Promise<any> {
  return waitFor(
    async () => {
      const t = (await server.api('GET', `/tasks/${taskId}`)).body.task;
      return ['succeeded', 'failed', 'cancelled'].includes(t.status) && t;
    },
    30_000,
    `task ${taskId} to end`,
  );
}

async function newDisk(name: string, format: string, size: number): Promise<any> {
  const r = await server.api('POST', '/disks', { name, size, format });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect((await finished(r.body.task.id)).status).toBe('succeeded');
  return r.body.disk;
}

async function resized(diskId: string, size: number): Promise<any> {
  const r = await server.api('POST', `/disks/${diskId}/resize`, { size });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  expect(r.body.task).toMatchObject({ kind: 'disk.resize', target: { disk: diskId } });
  const task = await finished(r.body.task.id);
  expect(task, JSON.stringify(task)).toMatchObject({ status: 'succeeded', result: { disk: diskId, size } });
  return task;
}

const diskOf = async (id: string) => (await server.api('GET', `/disks/${id}`)).body.disk;

describe('disk resize with qemu-img and QEMU', () => {
  it('a raw and a qcow2 disk of no VM: qemu-img grows the file; the size and a disk.updated event follow', async () => {
    for (const format of ['raw', 'qcow2']) {
      const disk = await newDisk(`offline-${format}`, format, 1);
      expect(virtualSize(disk.path, format)).toBe(1 * GiB);
      const task = await resized(disk.id, 2);
      expect(task.result.live).toBe(false);
      expect(virtualSize(disk.path, format)).toBe(2 * GiB);
      expect(await diskOf(disk.id)).toMatchObject({ size: 2, info: { 'virtual-size': 2 * GiB } });
      expect(events.events.some((e) => e.type === 'disk.updated' && e.disk.id === disk.id && e.disk.size === 2)).toBe(true);
      expect(fs.statSync(disk.path).mode & 0o777).toBe(0o600);
    }
  });

  it('shrinking or the same size is 409 DISK_CANNOT_SHRINK, a vmdk 409 DISK_NOT_RESIZABLE, and the image is untouched', async () => {
    const disk = await newDisk('no-shrink', 'qcow2', 2);
    const vmdk = await newDisk('a-vmdk', 'vmdk', 1);
    const before = { sum: digest(disk.path), vmdk: digest(vmdk.path) };
    const tasks = (await server.api('GET', `/tasks?disk=${disk.id}`)).body.tasks.length;
    for (const size of [1, 2]) {
      const r = await server.api('POST', `/disks/${disk.id}/resize`, { size });
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('DISK_CANNOT_SHRINK');
      expect(r.body.error).toMatch(/a resize only grows a disk/);
    }
    const v = await server.api('POST', `/disks/${vmdk.id}/resize`, { size: 2 });
    expect({ status: v.status, code: v.body.code }).toEqual({ status: 409, code: 'DISK_NOT_RESIZABLE' });
    const none = await server.api('POST', '/disks/00000000-0000-4000-8000-000000000000/resize', { size: 2 });
    expect({ status: none.status, code: none.body.code }).toEqual({ status: 404, code: 'DISK_NOT_FOUND' });
    expect(digest(disk.path)).toBe(before.sum);
    expect(digest(vmdk.path)).toBe(before.vmdk);
    expect(virtualSize(disk.path, 'qcow2')).toBe(2 * GiB);
    expect((await diskOf(disk.id)).size).toBe(2);
    expect((await server.api('GET', `/tasks?disk=${disk.id}`)).body.tasks.length).toBe(tasks);
  });

  it('a disk of a stopped VM by qemu-img, then of the running guest live: the guest sees the new size at once', async () => {
    const disk = await newDisk('guest-data', 'qcow2', 1);
    const script = path.join(server.dataDir, 'disks', 'resize-script.img');
    // vda is the data disk (attached first); the script prints its size, then waits for it to change.
    await writeScriptDisk(
      script,
      [
        'before=$(cat /sys/block/vda/size)',
        'echo "RESIZE_SIZE before=$before"',
        'i=0',
        'while [ $i -lt 300 ]; do',
        '  now=$(cat /sys/block/vda/size)',
        '  if [ "$now" != "$before" ]; then echo "RESIZE_SIZE after=$now"; break; fi',
        '  sleep 1; i=$((i+1))',
        'done',
        '',
      ].join('\n'),
    );
    const vm = (await server.api('POST', '/vms', { name: 'resize-guest', cpus: 1, memory: 128 })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: script })).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath })).status).toBe(200);

    // Stopped VM: qemu-img, under the VM's lock.
    const offline = await resized(disk.id, 2);
    expect(offline).toMatchObject({ target: { vm: vm.id }, result: { live: false } });
    expect(virtualSize(disk.path, 'qcow2')).toBe(2 * GiB);

    const started = await server.api('POST', `/vms/${vm.id}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const log = () => serialLog(server.dataDir, vm.id);
    await waitFor(() => log().includes('RESIZE_SIZE before='), 120_000, 'the guest to print its disk size').catch((err: Error) => {
      throw new Error(`${err.message}; serial log:\n${log().slice(-3000)}`);
    });
    expect(log()).toContain(`RESIZE_SIZE before=${(2 * GiB) / 512}`);

    // Running VM: QMP block_resize; the guest's own view changes.
    const live = await resized(disk.id, 3);
    expect(live).toMatchObject({ target: { vm: vm.id }, result: { live: true } });
    await waitFor(() => log().includes('RESIZE_SIZE after='), 30_000, 'the guest to see the new size').catch((err: Error) => {
      throw new Error(`${err.message}; serial log:\n${log().slice(-3000)}`);
    });
    expect(log()).toContain(`RESIZE_SIZE after=${(3 * GiB) / 512}`);
    expect(virtualSize(disk.path, 'qcow2')).toBe(3 * GiB);
    expect((await diskOf(disk.id)).size).toBe(3);

    // A shrink of the live disk is refused too, and the guest keeps its size.
    const shrink = await server.api('POST', `/disks/${disk.id}/resize`, { size: 2 });
    expect({ status: shrink.status, code: shrink.body.code }).toEqual({ status: 409, code: 'DISK_CANNOT_SHRINK' });

    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect(virtualSize(disk.path, 'qcow2')).toBe(3 * GiB);
  });
});
