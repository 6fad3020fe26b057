/**
 * The rest of the API surface against a real server and real qemu-img: health, OpenAPI, the three
 * disk formats, one VM per disk, extra storage roots, backing files, the ISO library.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, waitFor } from './harness.js';

let server: TestServer;
let extraRoot: string;
let elsewhere: string;

beforeAll(async () => {
  extraRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-root-'));
  elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-elsewhere-'));
  server = await new TestServer(makeDataDir(), { STORAGE_ROOTS: extraRoot }).start();
});
afterAll(async () => {
  await server?.dispose();
  fs.rmSync(extraRoot, { recursive: true, force: true });
  fs.rmSync(elsewhere, { recursive: true, force: true });
});

async function readyDisk(name: string, format: string, size = 1) {
  const r = await server.api('POST', '/disks', { name, size, format });
  expect(r.status).toBe(201);
  return waitFor(async () => {
    const d = (await server.api('GET', `/disks/${r.body.disk.id}`)).body.disk;
    return d.status !== 'creating' && d;
  }, 20_000, `disk ${name}`);
}

describe('system', () => {
  it('health reports QEMU version, accelerator and host limits', async () => {
    const { status, body } = await server.api('GET', '/health');
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(body.qemu.version).toMatch(/^\d+\.\d+/);
    expect(['kvm', 'tcg']).toContain(body.qemu.accel);
    expect(body.qemu.accelReason.length).toBeGreaterThan(0);
    expect(body.host.cpus).toBe(os.cpus().length);
  });

  it('serves an OpenAPI document generated from the validating schemas, extensions included', async () => {
    const { body } = await server.api('GET', '/openapi.json');
    expect(body.openapi).toMatch(/^3\./);
    for (const p of ['/api/vms', '/api/vms/{vm_id}/start', '/api/vms/{vm_id}/shutdown', '/api/vms/{vm_id}/pause', '/api/disks/{disk_id}', '/api/isos', '/api/health']) {
      expect(Object.keys(body.paths)).toContain(p);
    }
    const create = body.paths['/api/vms'].post.requestBody.content['application/json'].schema;
    expect(create.additionalProperties).toBe(false);
    // v1's required cpus and memory, unless the body names a template (issue 12)
    expect(create.required).toEqual(['name']);
    expect(create.if).toEqual({ not: { required: ['template'] } });
    expect(create.then).toEqual({ required: ['cpus', 'memory'] });
  });
});

describe('disks', () => {
  it('creates qcow2, raw and vmdk images whose real format qemu-img confirms', async () => {
    for (const format of ['qcow2', 'raw', 'vmdk']) {
      const d = await readyDisk(`fmt-${format}`, format, 3);
      expect(d.status).toBe('ready');
      const info = (await server.api('GET', `/disks/${d.id}`)).body.disk.info;
      expect(info.format).toBe(format);
      expect(info['virtual-size']).toBe(3 * 1024 ** 3);
    }
    expect((await server.api('POST', '/disks', { name: 'fmt-raw', size: 1, format: 'raw' })).body.code).toBe('NAME_TAKEN');
  });

  it('a disk is attached to one VM only, and each drive uses its image format', async () => {
    const d = await readyDisk('shared', 'raw');
    const a = (await server.api('POST', '/vms', { name: 'owner-a', cpus: 1, memory: 96 })).body.vm;
    const b = (await server.api('POST', '/vms', { name: 'owner-b', cpus: 1, memory: 96 })).body.vm;
    expect((await server.api('POST', `/vms/${a.id}/disks/attach`, { diskPath: d.path })).status).toBe(200);
    const again = await server.api('POST', `/vms/${a.id}/disks/attach`, { diskPath: d.path });
    expect(again.status).toBe(409);
    const other = await server.api('POST', `/vms/${b.id}/disks/attach`, { diskPath: d.path });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('DISK_IN_USE');
    // five more disks: no four-disk IDE limit
    for (let i = 0; i < 5; i++) {
      const x = await readyDisk(`many-${i}`, i % 2 ? 'qcow2' : 'raw');
      expect((await server.api('POST', `/vms/${a.id}/disks/attach`, { diskPath: x.path })).status).toBe(200);
    }
    const started = await server.api('POST', `/vms/${a.id}/start`);
    expect(started.status).toBe(200);
    const blockdevs = [...started.body.command.matchAll(/-blockdev '([^']+)'/g)].map((m) => JSON.parse(m[1]));
    expect(blockdevs.map((bd) => bd.driver)).toEqual(['raw', 'raw', 'qcow2', 'raw', 'qcow2', 'raw']);
    expect(started.body.vm.disks).toHaveLength(6);
    expect((await server.api('POST', `/vms/${a.id}/stop`)).status).toBe(200);
  });

  it('accepts images under STORAGE_ROOTS but refuses backing files outside the roots', async () => {
    const inRoot = path.join(extraRoot, 'external.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', inRoot, '1G']);
    const base = path.join(elsewhere, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
    const overlay = path.join(extraRoot, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    const vm = (await server.api('POST', '/vms', { name: 'external', cpus: 1, memory: 96 })).body.vm;
    const ok = await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: inRoot, format: 'qcow2' });
    expect(ok.status).toBe(200);
    expect(ok.body.vm.disks[0]).toMatchObject({ path: fs.realpathSync(inRoot), format: 'qcow2', diskId: null });
    const bad = await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: overlay, format: 'qcow2' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('PATH_NOT_ALLOWED');
    expect(bad.body.error).toContain('backing file');
  });

  it('deletes a detached disk and its file', async () => {
    const d = await readyDisk('doomed', 'qcow2');
    expect(fs.existsSync(d.path)).toBe(true);
    expect((await server.api('DELETE', `/disks/${d.id}`)).status).toBe(200);
    expect(fs.existsSync(d.path)).toBe(false);
    expect((await server.api('GET', `/disks/${d.id}`)).status).toBe(404);
  });
});
