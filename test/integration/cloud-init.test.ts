/**
 * Cloud-init (issue 12) with real QEMU, qemu-img, xorriso and the test guest: a VM made by one
 * POST /vms from the test guest's qcow2 cloud image (in the images library) with a cloud-init
 * config gets, at each start, a NoCloud seed (ISO 9660 labelled `cidata`, written by
 * xorriso, held by QEMU by descriptor as a second read-only CD-ROM); its files are read back with
 * xorriso; the guest prints the seed's local-hostname and instance-id and runs its runcmd; a
 * changed config gives a new instance-id at the next start; DELETE removes the seed file, and so
 * does deleting the VM. One guest, booted twice.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CIDATA_MARKER, INSTANCE_MARKER, READY_MARKER, RUNCMD_DONE_MARKER, ensureTestGuestCloudImage } from '../guest/index.js';
import { TestServer, makeDataDir, serialLog, waitFor } from './harness.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx4mpl3 me@host';

/** The seed's files as xorriso reads them: the volume id, the names at its root, and their text. */
function readSeed(iso: string): { label: string; names: string[]; files: Record<string, string> } {
  const pvd = execFileSync('xorriso', ['-indev', iso, '-pvd_info'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const label = /^Volume Id\s*:\s*(\S+)/m.exec(pvd)?.[1] ?? '';
  const ls = execFileSync('xorriso', ['-indev', iso, '-ls', '/'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const names = [...ls.matchAll(/^'([^']+)'$/gm)].map((m) => m[1]).sort();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-seed-'));
  try {
    const files: Record<string, string> = {};
    for (const name of names) {
      execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/${name}`, path.join(out, name)], { stdio: 'ignore' });
      files[name] = fs.readFileSync(path.join(out, name), 'utf8');
    }
    return { label, names, files };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

function openFiles(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

let server: TestServer;

beforeAll(async () => {
  const image = await ensureTestGuestCloudImage();
  server = await new TestServer(makeDataDir()).start();
  const up = await fetch(`${server.url}/api/images/upload/testguest`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: fs.readFileSync(image),
  });
  expect(up.status, await up.clone().text()).toBe(201);
}, 240_000);
afterAll(async () => {
  await server?.dispose();
});

describe('cloud-init NoCloud seed with real QEMU and xorriso', () => {
  it('the seed arrives: cidata volume with the merged user-data, the guest prints its hostname and runs runcmd; a changed config gets a new instance-id', async () => {
    const marker = `CI-MARK-${crypto.randomBytes(4).toString('hex')}`;
    const created = await server.api('POST', '/vms', {
      name: 'ci-guest',
      cpus: 1,
      memory: 256,
      image: 'testguest',
      cloudInit: {
        hostname: 'seeded-host',
        user: 'ana',
        password: 'hunter2!',
        sshAuthorizedKeys: [KEY],
        userData: `#cloud-config\nruncmd:\n  - echo ${marker}\n`,
        networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const taskId = created.body.task.id as string;
    await waitFor(async () => ['succeeded', 'failed'].includes((await server.api('GET', `/tasks/${taskId}`)).body.task.status as string), 60_000, 'vm.create task');
    const task = (await server.api('GET', `/tasks/${taskId}`)).body.task;
    expect(task.status, JSON.stringify(task)).toBe('succeeded');
    const id = task.result.vm as string;
    const vm = (await server.api('GET', `/vms/${id}`)).body.vm;
    expect(vm).toMatchObject({ cloudInit: true, iso: null, disks: [{ format: 'qcow2' }] });
    const first = (await server.api('GET', `/vms/${id}/cloud-init`)).body.cloudInit;
    expect(first.password).toBe('********');

    const started = await server.api('POST', `/vms/${id}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body.command).toContain('ide-cd,id=cd-seed,bus=ide.1,drive=cd-seed-media');
    const seedFile = path.join(server.dataDir, 'vms', id, 'cidata.iso');
    // QEMU holds it by descriptor (its path is not in the argv); the file is the server's, 0600
    expect(openFiles(started.body.vm.pid as number)).toContain(seedFile);
    expect(started.body.command).not.toContain('cidata.iso');
    const st = fs.statSync(seedFile);
    expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: process.getuid?.() ?? 0, mode: 0o600 });
    expect(fs.readdirSync(path.dirname(seedFile)).filter((n) => n.startsWith('.cidata-'))).toEqual([]);

    const seed = readSeed(seedFile);
    expect(seed.label).toBe('cidata');
    expect(seed.names).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(parse(seed.files['meta-data'])).toEqual({ 'instance-id': first.instanceId, 'local-hostname': 'seeded-host' });
    expect(seed.files['network-config']).toBe('version: 2\nethernets:\n  eth0:\n    dhcp4: true\n');
    const ud = seed.files['user-data'];
    expect(ud.split('\n')[0]).toBe('#cloud-config');
    expect(ud).not.toContain('hunter2');
    const doc = parse(ud) as { hostname: string; runcmd: string[]; users: unknown[] };
    expect(doc.hostname).toBe('seeded-host');
    expect(doc.runcmd).toEqual([`echo ${marker}`]);
    expect(doc.users[0]).toBe('default');
    expect(doc.users[1]).toMatchObject({ name: 'ana', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: false, ssh_authorized_keys: [KEY] });
    expect((doc.users[1] as { passwd: string }).passwd).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);

    await waitFor(() => serialLog(server.dataDir, id).includes(RUNCMD_DONE_MARKER), 120_000, 'guest runcmd');
    let serial = serialLog(server.dataDir, id);
    expect(serial).toContain(`${CIDATA_MARKER} seeded-host`);
    expect(serial).toContain(`${INSTANCE_MARKER} ${first.instanceId}`);
    expect(serial.indexOf(READY_MARKER)).toBeGreaterThan(-1);
    expect(serial.split('\n').map((l) => l.trim())).toContain(marker);

    // changed while running: applies at the next start, with a new instance-id
    const changed = await server.api('PUT', `/vms/${id}/cloud-init`, { hostname: 'second-host', userData: `#cloud-config\nruncmd:\n  - echo ${marker}-2\n` });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    const second = changed.body.cloudInit;
    expect(second.instanceId).not.toBe(first.instanceId);
    expect(second.password).toBe('********'); // omitted: kept
    expect(parse(readSeed(seedFile).files['meta-data'])).toMatchObject({ 'instance-id': first.instanceId }); // not before the next start
    expect((await server.api('POST', `/vms/${id}/stop`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    await waitFor(() => serialLog(server.dataDir, id).includes(RUNCMD_DONE_MARKER), 120_000, 'guest runcmd after the change');
    serial = serialLog(server.dataDir, id);
    expect(serial).toContain(`${CIDATA_MARKER} second-host`);
    expect(serial).toContain(`${INSTANCE_MARKER} ${second.instanceId}`);
    expect(serial).not.toContain(first.instanceId);
    expect(serial.split('\n').map((l) => l.trim())).toContain(`${marker}-2`);
    const again = readSeed(seedFile);
    expect(again.names).toEqual(['meta-data', 'user-data']); // no network-config any more
    expect(parse(again.files['meta-data'])).toEqual({ 'instance-id': second.instanceId, 'local-hostname': 'second-host' });
    expect((await server.api('POST', `/vms/${id}/stop`)).status).toBe(200);

    // DELETE removes the config and the seed; deleting the VM removes its directory
    expect((await server.api('DELETE', `/vms/${id}/cloud-init`)).status).toBe(200);
    expect(fs.existsSync(seedFile)).toBe(false);
    expect((await server.api('PUT', `/vms/${id}/cloud-init`, { hostname: 'x' })).status).toBe(200);
    expect((await server.api('DELETE', `/vms/${id}`)).status).toBe(200);
    expect(fs.existsSync(path.dirname(seedFile))).toBe(false);
  }, 300_000);
});
