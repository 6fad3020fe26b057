/**
 * QEMU runs detached from the server: SIGKILL the server while VMs run, start it again, and the VMs
 * are still running, reported running, their consoles work and stop works. A disk whose creation was
 * cut short is marked error with its partial file removed; a VM caught mid-start is reconciled.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, qemuPidsOf, vncBanner } from './harness.js';

let server: TestServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeDataDir();
  server = await new TestServer(dataDir).start();
});
afterAll(async () => {
  await server?.dispose();
});

describe('server crash and restart', () => {
  it('refuses a second server on the same data dir', async () => {
    const second = new TestServer(dataDir);
    await expect(second.start()).rejects.toThrow(/exited with 2[\s\S]*another QEMU Manager server \(pid \d+\) uses DATA_DIR/);
  });

  it('re-adopts running and paused VMs after SIGKILL', async () => {
    const a = (await server.api('POST', '/vms', { name: 'keep-a', cpus: 1, memory: 96 })).body.vm;
    const b = (await server.api('POST', '/vms', { name: 'keep-b', cpus: 1, memory: 96 })).body.vm;
    await server.api('POST', '/vms', { name: 'keep-c', cpus: 1, memory: 96 });
    const pa = (await server.api('POST', `/vms/${a.id}/start`)).body.vm.pid;
    const pb = (await server.api('POST', `/vms/${b.id}/start`)).body.vm.pid;
    await server.api('POST', `/vms/${b.id}/pause`);

    await server.kill('SIGKILL');
    expect(qemuPidsOf(dataDir).sort()).toEqual([pa, pb].sort()); // the VMs outlive the server

    server = await new TestServer(dataDir).start();
    const vms = Object.fromEntries((await server.api('GET', '/vms')).body.vms.map((v: any) => [v.name, v]));
    expect(vms['keep-a']).toMatchObject({ status: 'running', pid: pa });
    expect(vms['keep-b']).toMatchObject({ status: 'paused', pid: pb });
    expect(vms['keep-c']).toMatchObject({ status: 'stopped', pid: null });
    expect(qemuPidsOf(dataDir).sort()).toEqual([pa, pb].sort()); // no second QEMU

    expect(await vncBanner(server.url, a.id)).toMatch(/^RFB/);
    expect((await server.api('POST', `/vms/${a.id}/start`)).status).toBe(409);
    expect((await server.api('POST', `/vms/${b.id}/resume`)).body.vm.status).toBe('running');
    expect((await server.api('POST', `/vms/${a.id}/stop`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${b.id}/stop`)).status).toBe(200);
    expect(qemuPidsOf(dataDir)).toEqual([]);
  });

  it('a VM whose QEMU died while the server was down is reported stopped', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'dies', cpus: 1, memory: 96 })).body.vm;
    const pid = (await server.api('POST', `/vms/${vm.id}/start`)).body.vm.pid;
    await server.kill('SIGKILL');
    process.kill(pid, 'SIGKILL');
    server = await new TestServer(dataDir).start();
    expect((await server.api('GET', `/vms/${vm.id}`)).body.vm).toMatchObject({ status: 'stopped', pid: null });
  });

  it('fixes a disk left creating and a VM left starting by a crash', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'mid-start', cpus: 1, memory: 96 })).body.vm;
    await server.kill('SIGKILL');
    const db = new Database(path.join(dataDir, 'db.sqlite'));
    const partial = path.join(dataDir, 'disks', 'cut.qcow2');
    db.prepare(
      `INSERT INTO disks (id, name, size, format, path, status, created_at)
       VALUES ('7d8f2b7e-1111-4222-8333-944455556666', 'cut', 1, 'qcow2', ?, 'creating', ?)`,
    ).run(partial, new Date().toISOString());
    db.prepare(`UPDATE vms SET status = 'starting' WHERE id = ?`).run(vm.id);
    db.close();
    fs.writeFileSync(`${partial}.part`, 'half an image');

    server = await new TestServer(dataDir).start();
    const disk = (await server.api('GET', '/disks/7d8f2b7e-1111-4222-8333-944455556666')).body.disk;
    expect(disk.status).toBe('error');
    expect(disk.error).toMatch(/interrupted/);
    expect(fs.existsSync(`${partial}.part`)).toBe(false);
    expect((await server.api('GET', `/vms/${vm.id}`)).body.vm.status).toBe('stopped');
  });
});
