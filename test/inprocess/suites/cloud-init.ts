/**
 * Cloud-init (issue 12): GET/PUT/DELETE /vms/{id}/cloud-init and POST /vms with `cloudInit`: the
 * password stored hashed and masked, the merged seed handed to the runtime at start, a new
 * instance-id for a changed config, and the refusals (invalid YAML, a list, oversized bodies, bad
 * hostnames and keys), each leaving nothing stored.
 */
import { CloudInitEnvelope, VmEnvelope, type Vm } from '@qemu-manager/contract';
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sha512Crypt } from '../../../packages/server/src/lib/sha512-crypt.js';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx4mpl3 me@host';

export function cloudInitSuite(): void {
  describe('cloud-init (issue 12)', () => {
    let s: InProcessServer;
    const newVm = async (name: string, extra: Record<string, unknown> = {}): Promise<Vm> => {
      const r = await s.api('POST', '/vms', { name, cpus: 1, memory: 64, ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body as VmEnvelope).vm;
    };
    const lastSeed = (id: string) => s.runtime.launches.filter((l) => l.vmId === id).at(-1)?.cloudInit;
    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('PUT stores the config (password hashed, masked on GET), the VM says cloudInit, the start gets the merged seed', async () => {
      const vm = await newVm('ci-put');
      expect(vm.cloudInit).toBe(false);
      expectError(await s.api('GET', `/vms/${vm.id}/cloud-init`), 'NOT_FOUND', 404, `VM ${vm.id} has no cloud-init config`);
      const r = await s.api('PUT', `/vms/${vm.id}/cloud-init`, {
        hostname: 'box',
        user: 'ana',
        password: 'hunter2!',
        sshAuthorizedKeys: [KEY],
        userData: '#cloud-config\nruncmd:\n  - echo MARKER\n',
        networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expectShape(CloudInitEnvelope, r.body);
      const ci = (r.body as CloudInitEnvelope).cloudInit;
      expect(ci).toMatchObject({ hostname: 'box', user: 'ana', password: '********', sshAuthorizedKeys: [KEY] });
      expect(ci.instanceId).toMatch(new RegExp(`^${vm.id}-[0-9a-f]{12}$`));
      expect(JSON.stringify(r.body)).not.toContain('hunter2');
      const got = await s.api('GET', `/vms/${vm.id}/cloud-init`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(r.body);
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.cloudInit).toBe(true);
      expect(((await s.api('GET', '/vms')).body.vms as Vm[]).find((v) => v.id === vm.id)?.cloudInit).toBe(true);
      // the database holds only the SHA-512 crypt hash
      const db = new Database(path.join(s.dataDir, 'db.sqlite'), { readonly: true });
      try {
        const row = db.prepare('SELECT password_hash FROM vm_cloud_init WHERE vm_id = ?').get(vm.id) as { password_hash: string };
        expect(row.password_hash).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
        expect(sha512Crypt('hunter2!', row.password_hash)).toBe(row.password_hash);
      } finally {
        db.close();
      }
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      const seed = lastSeed(vm.id)!;
      expect(seed).toBeTruthy();
      const ud = parse(seed.userData) as { hostname: string; runcmd: string[]; users: Array<string | { name: string; passwd: string }> };
      expect(seed.userData.startsWith('#cloud-config\n')).toBe(true);
      expect(ud.hostname).toBe('box');
      expect(ud.runcmd).toEqual(['echo MARKER']);
      const ana = ud.users.find((u) => typeof u === 'object' && u.name === 'ana') as { passwd: string };
      expect(ana.passwd).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
      expect(seed.userData).not.toContain('hunter2');
      expect(parse(seed.metaData)).toEqual({ 'instance-id': ci.instanceId, 'local-hostname': 'box' });
      expect(seed.networkConfig).toBe('version: 2\nethernets:\n  eth0:\n    dhcp4: true\n');
      // allowed while the VM runs: applies at the next start, with a new instance-id
      const changed = await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'box2' });
      expect(changed.status).toBe(200);
      const ci2 = (changed.body as CloudInitEnvelope).cloudInit;
      expect(ci2.instanceId).not.toBe(ci.instanceId);
      expect(ci2).toMatchObject({ hostname: 'box2', user: null, password: '********', sshAuthorizedKeys: [], userData: null, networkConfig: null });
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect(parse(lastSeed(vm.id)!.metaData)).toEqual({ 'instance-id': ci2.instanceId, 'local-hostname': 'box2' });
      // the same config again: the same instance-id; password null removes it
      expect(((await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'box2' })).body as CloudInitEnvelope).cloudInit.instanceId).toBe(ci2.instanceId);
      expect(((await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'box2', password: null })).body as CloudInitEnvelope).cloudInit.password).toBeNull();
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('DELETE removes it: no seed at the next start, cloudInit false, a second DELETE is 404', async () => {
      const vm = await newVm('ci-del');
      expect((await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'gone' })).status).toBe(200);
      const del = await s.api('DELETE', `/vms/${vm.id}/cloud-init`);
      expect(del.status).toBe(200);
      expect(del.body).toEqual({ message: expect.stringMatching(/deleted/) as string });
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.cloudInit).toBe(false);
      expectError(await s.api('GET', `/vms/${vm.id}/cloud-init`), 'NOT_FOUND', 404, /no cloud-init config/);
      expectError(await s.api('DELETE', `/vms/${vm.id}/cloud-init`), 'NOT_FOUND', 404, /no cloud-init config/);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect(lastSeed(vm.id) ?? null).toBeNull();
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      // gone with the VM
      expect((await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'again' })).status).toBe(200);
      expect((await s.api('DELETE', `/vms/${vm.id}`)).status).toBe(200);
      expectError(await s.api('GET', `/vms/${vm.id}/cloud-init`), 'VM_NOT_FOUND', 404, /VM not found/);
      expectError(await s.api('PUT', `/vms/${vm.id}/cloud-init`, {}), 'VM_NOT_FOUND', 404, /VM not found/);
    });

    it('refusals: clear 400s and nothing stored', async () => {
      const vm = await newVm('ci-bad');
      const bad: Array<[unknown, RegExp]> = [
        [{ userData: '#cloud-config\nruncmd:\n  - [echo, "x\n' }, /^userData line 4: Missing closing "quote/],
        [{ userData: '#cloud-config\n- a\n- b\n' }, /^userData line 2: the document is a list; it must be a mapping/],
        [{ userData: '#!/bin/sh\necho hi\n' }, /only #cloud-config/],
        [{ networkConfig: 'version: [2\n' }, /^networkConfig line \d+:/],
        [{ hostname: 'bad_host!' }, /hostname/],
        [{ hostname: 'a'.repeat(64) }, /hostname/],
        [{ user: 'Root' }, /user/],
        [{ sshAuthorizedKeys: ['not a key'] }, /sshAuthorizedKeys/],
        [{ sshAuthorizedKeys: [`${KEY}\nssh-rsa AAAA injected`] }, /sshAuthorizedKeys/],
        [{ userData: `a: "${'x'.repeat(262_145)}"` }, /userData/],
        [{ extra: 1 }, /extra|additional/i],
      ];
      for (const [body, message] of bad) {
        expectError(await s.api('PUT', `/vms/${vm.id}/cloud-init`, body), 'VALIDATION', 400, message);
      }
      expectError(await s.api('GET', `/vms/${vm.id}/cloud-init`), 'NOT_FOUND', 404, /no cloud-init config/);
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.cloudInit).toBe(false);
      // a stored config stays as it was when a change is refused
      const ok = (await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'keep', password: 'pw' })).body as CloudInitEnvelope;
      expectError(await s.api('PUT', `/vms/${vm.id}/cloud-init`, { hostname: 'other', userData: '- x' }), 'VALIDATION', 400, /a list/);
      expect((await s.api('GET', `/vms/${vm.id}/cloud-init`)).body).toEqual(ok);
    });

    it('a 10 MiB user-data is refused by the body limit with the v1 error shape, nothing stored', async () => {
      const vm = await newVm('ci-huge');
      const r = await s.api('PUT', `/vms/${vm.id}/cloud-init`, { userData: `a: "${'x'.repeat(10 << 20)}"` });
      expect(r.status).toBe(413);
      expect(Object.keys(r.body as object).sort()).toEqual(['code', 'error', 'timestamp']);
      expectError(r, (r.body as { code: 'PAYLOAD_TOO_LARGE' }).code, 413, /.+/);
      expectError(await s.api('GET', `/vms/${vm.id}/cloud-init`), 'NOT_FOUND', 404, /no cloud-init config/);
    });

    it('POST /vms with an image and cloudInit: one vm.create task makes the VM with its config', async () => {
      const header = Buffer.alloc(64 * 1024);
      header.writeUInt32BE(0x514649fb, 0); // a qcow2 header of 1 GiB (what the image checks read)
      header.writeUInt32BE(3, 4);
      header.writeUInt32BE(16, 20);
      header.writeBigUInt64BE(1n << 30n, 24);
      header.writeUInt32BE(104, 100);
      const up = await s.inject({ method: 'PUT', url: '/api/images/upload/ci-img', headers: { 'content-type': 'application/octet-stream' }, payload: header });
      expect(up.status, JSON.stringify(up.body)).toBe(201);
      const r = await s.api('POST', '/vms', { name: 'ci-from-image', cpus: 1, memory: 64, image: 'ci-img', cloudInit: { hostname: 'from-image', password: 'pw' } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      await s.built.tasks.idle();
      const task = (await s.api('GET', `/tasks/${r.body.task.id as string}`)).body.task as { status: string; result: { vm: string } };
      expect(task.status, JSON.stringify(task)).toBe('succeeded');
      const vm = ((await s.api('GET', `/vms/${task.result.vm}`)).body as VmEnvelope).vm;
      expect(vm.cloudInit).toBe(true);
      expect(((await s.api('GET', `/vms/${vm.id}/cloud-init`)).body as CloudInitEnvelope).cloudInit).toMatchObject({ hostname: 'from-image', password: '********' });
    });

    it('POST /vms with cloudInit: stored with the VM; checked before the VM is made', async () => {
      const vm = await newVm('ci-create', { cloudInit: { hostname: 'made', sshAuthorizedKeys: [KEY] } });
      expect(vm.cloudInit).toBe(true);
      const ci = ((await s.api('GET', `/vms/${vm.id}/cloud-init`)).body as CloudInitEnvelope).cloudInit;
      expect(ci).toMatchObject({ hostname: 'made', sshAuthorizedKeys: [KEY], password: null });
      expectError(await s.api('POST', '/vms', { name: 'ci-create-bad', cpus: 1, memory: 64, cloudInit: { userData: 'a: [1\n' } }), 'VALIDATION', 400, /^userData line \d+:/);
      expectError(await s.api('POST', '/vms', { name: 'ci-create-bad', cpus: 1, memory: 64, cloudInit: { hostname: '-x' } }), 'VALIDATION', 400, /hostname/);
      expect(((await s.api('GET', '/vms')).body.vms as Vm[]).map((v) => v.name)).not.toContain('ci-create-bad');
    });
  });
}
