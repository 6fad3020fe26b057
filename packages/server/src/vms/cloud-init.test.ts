import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AppError } from '../lib/errors.js';
import { sha512Crypt } from '../lib/sha512-crypt.js';
import { checkCloudInitBody, configFromBody, renderSeed, type CloudInitConfig } from './cloud-init.js';

const VM = '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx4mpl3 me@host';
const empty: CloudInitConfig = { hostname: null, user: null, passwordHash: null, sshAuthorizedKeys: [], userData: null, networkConfig: null };

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VALIDATION');
    return (err as AppError).message;
  }
  throw new Error('not refused');
}

describe('checkCloudInitBody', () => {
  it('invalid YAML: the line of the error', () => {
    expect(refusal(() => checkCloudInitBody({ userData: '#cloud-config\nruncmd:\n  - [echo, "x\n' }))).toMatch(/^userData line 4: Missing closing "quote/);
    expect(refusal(() => checkCloudInitBody({ userData: 'a: 1\nb: 2\na: 3\n' }))).toMatch(/^userData line 3: Map keys must be unique/);
    expect(refusal(() => checkCloudInitBody({ networkConfig: 'version: 2\nethernets: {\n' }))).toMatch(/^networkConfig line \d+:/);
  });

  it('a list, or a single value, is not a mapping', () => {
    expect(refusal(() => checkCloudInitBody({ userData: '#cloud-config\n\n- a\n- b\n' }))).toBe('userData line 3: the document is a list; it must be a mapping (key: value lines)');
    expect(refusal(() => checkCloudInitBody({ userData: 'just text' }))).toMatch(/single value/);
    expect(refusal(() => checkCloudInitBody({ networkConfig: '- eth0' }))).toMatch(/^networkConfig line 1: the document is a list/);
  });

  it('scripts and other user-data formats are refused; no header or an empty document is fine', () => {
    expect(refusal(() => checkCloudInitBody({ userData: '#!/bin/sh\necho hi\n' }))).toMatch(/only #cloud-config/);
    expect(refusal(() => checkCloudInitBody({ userData: '#cloud-boothook\na: 1\n' }))).toMatch(/only #cloud-config/);
    expect(refusal(() => checkCloudInitBody({ userData: 'Content-Type: multipart/mixed\n' }))).toMatch(/only #cloud-config/);
    expect(() => checkCloudInitBody({ userData: 'packages: [curl]\n' })).not.toThrow();
    expect(() => checkCloudInitBody({ userData: '#cloud-config\n' })).not.toThrow();
    expect(() => checkCloudInitBody({ userData: '' })).not.toThrow();
  });

  it('sizes are bytes, not characters', () => {
    expect(refusal(() => checkCloudInitBody({ userData: `a: "${'é'.repeat(140_000)}"` }))).toMatch(/^userData is \d+ bytes; at most 262144/);
  });

  it('users must be a list to take the user; a key twice; a password with a line break', () => {
    expect(refusal(() => checkCloudInitBody({ user: 'ana', userData: 'users: {ana: 1}\n' }))).toMatch(/"users" must be a list/);
    expect(refusal(() => checkCloudInitBody({ sshAuthorizedKeys: [KEY, KEY] }))).toMatch(/twice/);
    expect(refusal(() => checkCloudInitBody({ password: 'a\nb' }))).toMatch(/line breaks/);
  });
});

describe('configFromBody', () => {
  it('hashes the password (SHA-512 crypt); omitted keeps the stored one, null removes it', () => {
    const first = configFromBody({ password: 's3cret' }, null);
    expect(first.passwordHash).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(sha512Crypt('s3cret', first.passwordHash!)).toBe(first.passwordHash);
    expect(configFromBody({ hostname: 'h' }, first).passwordHash).toBe(first.passwordHash);
    expect(configFromBody({ password: null }, first).passwordHash).toBeNull();
    expect(configFromBody({}, first).hostname).toBeNull(); // everything else is replaced
  });
});

describe('renderSeed', () => {
  it('the simple fields win over the same keys of userData; comments and other keys are kept', () => {
    const hash = configFromBody({ password: 'pw' }, null).passwordHash;
    const seed = renderSeed(VM, 'web-1', {
      ...empty,
      hostname: 'box',
      user: 'ana',
      passwordHash: hash,
      sshAuthorizedKeys: [KEY],
      userData: '#cloud-config\n# mine\nhostname: other\nusers:\n  - name: ana\n    shell: /bin/zsh\n  - name: bob\nruncmd:\n  - echo hi\n',
    });
    expect(seed.userData.startsWith('#cloud-config\n# mine\n')).toBe(true);
    const doc = parse(seed.userData) as Record<string, unknown>;
    expect(doc.hostname).toBe('box');
    expect(doc.runcmd).toEqual(['echo hi']);
    expect(doc.users).toEqual([
      { name: 'bob' },
      { name: 'ana', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', lock_passwd: false, passwd: hash, ssh_authorized_keys: [KEY] },
    ]);
    expect(seed.userData).not.toContain('pw\n');
    expect(parse(seed.metaData)).toEqual({ 'instance-id': seed.instanceId, 'local-hostname': 'box' });
    expect(seed.networkConfig).toBeNull();
  });

  it('a user without users in userData keeps the default user first; no password locks it', () => {
    const doc = parse(renderSeed(VM, 'web-1', { ...empty, user: 'ana' }).userData) as Record<string, unknown>;
    expect(doc.users).toEqual(['default', { name: 'ana', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', lock_passwd: true }]);
  });

  it('without a user: keys and password go to the default user', () => {
    const hash = configFromBody({ password: 'pw' }, null).passwordHash;
    const seed = renderSeed(VM, 'web-1', { ...empty, passwordHash: hash, sshAuthorizedKeys: [KEY], userData: 'ssh_authorized_keys: [old]\n' });
    expect(seed.userData.startsWith('#cloud-config\n')).toBe(true);
    expect(parse(seed.userData)).toEqual({ ssh_authorized_keys: [KEY], password: hash, chpasswd: { expire: false } });
  });

  it('local-hostname: the hostname, else userData hostname, else the VM name when it is a valid hostname', () => {
    expect(parse(renderSeed(VM, 'web-1', { ...empty, userData: 'hostname: from-ud\n' }).metaData)).toMatchObject({ 'local-hostname': 'from-ud' });
    expect(parse(renderSeed(VM, 'web-1', empty).metaData)).toMatchObject({ 'local-hostname': 'web-1' });
    expect(parse(renderSeed(VM, 'My VM', empty).metaData)).toEqual({ 'instance-id': expect.any(String) as string });
  });

  it('instance-id: the VM id and a hash of the seed; the same config gives the same, any change a new one', () => {
    const a = renderSeed(VM, 'web-1', { ...empty, hostname: 'box' }).instanceId;
    expect(a).toMatch(new RegExp(`^${VM}-[0-9a-f]{12}$`));
    expect(renderSeed(VM, 'web-1', { ...empty, hostname: 'box' }).instanceId).toBe(a);
    expect(renderSeed(VM, 'web-1', { ...empty, hostname: 'box2' }).instanceId).not.toBe(a);
    expect(renderSeed(VM, 'web-1', { ...empty, hostname: 'box', networkConfig: 'version: 2' }).instanceId).not.toBe(a);
    expect(renderSeed(VM, 'web-1', { ...empty, hostname: 'box', userData: 'runcmd: [x]' }).instanceId).not.toBe(a);
    expect(renderSeed('other-vm', 'web-1', { ...empty, hostname: 'box' }).instanceId).not.toBe(a);
  });
});

describe('CloudInitService over SQLite', () => {
  it('set, get (masked), copy to another VM (same hash, new instance-id), delete; the row goes with the VM', async () => {
    const { openDb } = await import('../store/sqlite.js');
    const { VmRepo } = await import('./repo.js');
    const { CloudInitRepo, CloudInitService } = await import('./cloud-init.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-ci-unit-'));
    const db = openDb(path.join(dir, 'db.sqlite'));
    try {
      const repo = new VmRepo(db);
      for (const [id, name] of [['vm-a', 'a'], ['vm-b', 'b']]) {
        repo.insert({ id: id, name: name, cpus: 1, memory: 64, vnc_port: 5900 + (id === 'vm-a' ? 1 : 2), mac: `52:54:00:00:00:0${id === 'vm-a' ? 1 : 2}`, created_at: '2026-01-01T00:00:00.000Z' });
      }
      const published: string[] = [];
      const discarded: string[] = [];
      const ctx = { repo, bus: { publish: (e: { type: string }) => published.push(e.type) }, runtime: { discardSeed: (id: string) => discarded.push(id) } };
      const svc = new CloudInitService(ctx as never, new CloudInitRepo(db));
      const a = svc.set('vm-a', { hostname: 'h', password: 'pw' });
      expect(a.password).toBe('********');
      expect(repo.get('vm-a')!.cloudInit).toBe(true);
      expect(repo.get('vm-b')!.cloudInit).toBe(false);
      expect(svc.copy('vm-a', 'vm-b')).toBe(true);
      const b = svc.get('vm-b');
      expect(b).toMatchObject({ hostname: 'h', password: '********' });
      expect(b.instanceId).toMatch(/^vm-b-/);
      expect(b.instanceId).not.toBe(a.instanceId);
      const hashes = db.prepare('SELECT password_hash FROM vm_cloud_init ORDER BY vm_id').pluck().all() as string[];
      expect(hashes[0]).toBe(hashes[1]);
      expect(svc.seed('vm-b', 'b')!.userData).toContain(hashes[0]);
      svc.delete('vm-b');
      expect(discarded).toEqual(['vm-b']);
      expect(svc.seed('vm-b', 'b')).toBeNull();
      expect(svc.copy('vm-b', 'vm-a')).toBe(false);
      repo.delete('vm-a');
      expect(db.prepare('SELECT count(*) FROM vm_cloud_init').pluck().get()).toBe(0);
      expect(published).toEqual(['vm.updated', 'vm.updated']);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
