/**
 * Hostile input: shell metacharacters, `..`, commas, paths outside the storage roots, symlinks out,
 * absurd numbers, unknown fields, bad JSON and huge bodies. Each is refused with a 4xx in the v1
 * error shape, and nothing changes: no VM, no disk, no file, no QEMU.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, qemuPidsOf } from './harness.js';

let server: TestServer;
let vmId: string;
let outside: string;

beforeAll(async () => {
  server = await new TestServer(makeDataDir()).start();
  vmId = (await server.api('POST', '/vms', { name: 'target', cpus: 1, memory: 96 })).body.vm.id;
  outside = path.join(server.dataDir, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.qcow2'), 'not yours');
  fs.symlinkSync(path.join(outside, 'secret.qcow2'), path.join(server.dataDir, 'disks', 'link.qcow2'));
  fs.symlinkSync('/etc/shadow', path.join(server.dataDir, 'isos', 'shadow.iso'));
});
afterAll(async () => {
  await server?.dispose();
});

async function snapshot() {
  const vms = (await server.api('GET', '/vms')).body.vms;
  const disks = (await server.api('GET', '/disks')).body.disks;
  const files = fs.readdirSync(path.join(server.dataDir, 'disks')).sort();
  return { vms, disks, files, qemus: qemuPidsOf(server.dataDir) };
}

function expectRefused(r: { status: number; body: any }, status: number, code?: string) {
  expect(r.status).toBe(status);
  expect(typeof r.body.error).toBe('string');
  expect(r.body.error.length).toBeGreaterThan(0);
  expect(Date.parse(r.body.timestamp)).not.toBeNaN();
  if (code) expect(r.body.code).toBe(code);
}

describe('hostile input is refused and changes nothing', () => {
  it('VM names with shell metacharacters, commas, traversal or absurd sizes', async () => {
    const before = await snapshot();
    const bad: unknown[] = [
      { name: 'x; rm -rf /', cpus: 1, memory: 128 },
      { name: '$(reboot)', cpus: 1, memory: 128 },
      { name: 'a,b=c', cpus: 1, memory: 128 },
      { name: '../etc', cpus: 1, memory: 128 },
      { name: '', cpus: 1, memory: 128 },
      { name: 'x'.repeat(64), cpus: 1, memory: 128 },
      { name: 'ok', cpus: 0, memory: 128 },
      { name: 'ok', cpus: 1e9, memory: 128 },
      { name: 'ok', cpus: 1.5, memory: 128 },
      { name: 'ok', cpus: '1', memory: 128 },
      { name: 'ok', cpus: 1, memory: 8 },
      { name: 'ok', cpus: 1, memory: 1e12 },
      { name: 'ok', cpus: 1, memory: 128, extra: '-sandbox off' },
      { name: 'ok', cpus: 1 },
      [],
      'null',
    ];
    for (const body of bad) {
      expectRefused(await server.api('POST', '/vms', body), 400);
    }
    expectRefused(await server.api('POST', '/vms', { name: 'target', cpus: 1, memory: 128 }), 409, 'NAME_TAKEN');
    expect(await snapshot()).toEqual(before);
  });

  it('disk and ISO paths outside the roots, relative, traversing, symlinked out, or not files', async () => {
    const before = await snapshot();
    const d = server.dataDir;
    const attempts: Array<[string, number]> = [
      ['/etc/passwd', 400],
      [`${d}/disks/../outside/secret.qcow2`, 400],
      [`${d}/disks/link.qcow2`, 400],
      ['disks/x.qcow2', 400],
      [`${d}/disks`, 400],
      [`${d}/disks/missing.qcow2`, 404],
      [`${d}/disks/a,file.driver=ssh.qcow2`, 404],
      ['/dev/sda', 400],
      ['', 400],
    ];
    for (const [diskPath, status] of attempts) {
      expectRefused(await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath }), status);
    }
    for (const isoPath of ['/etc/shadow', `${d}/isos/shadow.iso`, `${d}/isos/../outside/secret.qcow2`]) {
      expectRefused(await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath }), 400, 'PATH_NOT_ALLOWED');
    }
    expect((await server.api('GET', `/vms/${vmId}`)).body.vm).toMatchObject({ disks: [], iso: null });
    expect(await snapshot()).toEqual(before);
  });

  it('disk names that could escape the disk directory, bad formats and sizes', async () => {
    const before = await snapshot();
    const bad: unknown[] = [
      { name: '../../etc/evil', size: 1, format: 'qcow2' },
      { name: '.hidden', size: 1, format: 'qcow2' },
      { name: 'a/b', size: 1, format: 'qcow2' },
      { name: 'a b', size: 1, format: 'qcow2' },
      { name: 'ok', size: 0, format: 'qcow2' },
      { name: 'ok', size: 1e9, format: 'qcow2' },
      { name: 'ok', size: 1, format: 'host_device' },
      { name: 'ok', size: 1, format: 'qcow2', preallocation: 'full' },
    ];
    for (const body of bad) expectRefused(await server.api('POST', '/disks', body), 400, 'VALIDATION');
    expect(await snapshot()).toEqual(before);
  });

  it('bad ids, unknown VMs, bad JSON, wrong content and huge bodies', async () => {
    const before = await snapshot();
    // An id that names nothing is a 404 whatever its form (it only ever reaches a database lookup).
    expectRefused(await server.api('GET', '/vms/not-a-uuid'), 404, 'VM_NOT_FOUND');
    expectRefused(await server.api('GET', '/vms/..%2F..%2Fetc'), 404, 'VM_NOT_FOUND');
    expectRefused(await server.api('POST', '/vms/3f1d7a6c-0000-4000-8000-000000000000/start'), 404, 'VM_NOT_FOUND');
    expectRefused(await server.api('DELETE', '/disks/3f1d7a6c-0000-4000-8000-000000000000'), 404, 'DISK_NOT_FOUND');
    expectRefused(await server.api('POST', '/vms', '{"name": "x",'), 400);
    expectRefused(await server.api('POST', '/vms', 'name=x', { 'content-type': 'text/plain' }), 415);
    expectRefused(await server.api('POST', '/vms', { name: 'big', cpus: 1, memory: 128, pad: 'x'.repeat(2 << 20) }), 413, 'PAYLOAD_TOO_LARGE');
    expectRefused(await server.api('PATCH', `/vms/${vmId}/resources`, {}), 400);
    expectRefused(await server.api('PATCH', `/vms/${vmId}/resources`, { cpus: -1 }), 400);
    expectRefused(await server.api('GET', '/nothing-here'), 404);
    expect(await snapshot()).toEqual(before);
  });

  it('ISO uploads: bad names, non-ISO content, existing names', async () => {
    const isos = path.join(server.dataDir, 'isos');
    const before = fs.readdirSync(isos).sort();
    const up = (name: string, body: Buffer) =>
      server.api('PUT', `/isos/${encodeURIComponent(name)}`, body, { 'content-type': 'application/octet-stream' });
    expectRefused(await up('../evil.iso', Buffer.alloc(40_000)), 400);
    expectRefused(await up('x.sh', Buffer.alloc(40_000)), 400);
    expectRefused(await up('notiso.iso', Buffer.alloc(40_000, 1)), 400, 'VALIDATION');
    const iso = Buffer.alloc(40_000);
    iso.write('\x01CD001', 16 * 2048, 'latin1');
    const ok = await up('tiny.iso', iso);
    expect(ok.status).toBe(201);
    expect(ok.body.iso).toMatchObject({ name: 'tiny.iso', size: 40_000 });
    expectRefused(await up('tiny.iso', iso), 409, 'NAME_TAKEN');
    expect(fs.readdirSync(isos).sort()).toEqual([...before, 'tiny.iso'].sort());
  });
});
