/** Backups: restore, verify, delete, import (issue 13), over the fake image tool and fixture directories. */
import { TaskEnvelope, VmEnvelope, type Disk, type Task, type Vm } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const GiB = 1024 ** 3;

/** A small real qcow2 header (what the server's header check reads), with a backing name when given. */
function qcow2(backing: string | null, fill: number): Buffer {
  const b = Buffer.alloc(64 * 1024, 0);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(3, 4);
  b.writeUInt32BE(16, 20);
  b.writeBigUInt64BE(BigInt(GiB), 24);
  b.writeUInt32BE(104, 100);
  if (backing) {
    const fmt = Buffer.from('qcow2');
    b.writeUInt32BE(0xe2792aca, 104);
    b.writeUInt32BE(fmt.length, 108);
    fmt.copy(b, 112);
    const name = Buffer.from(backing);
    b.writeBigUInt64BE(1024n, 8);
    b.writeUInt32BE(name.length, 16);
    name.copy(b, 1024);
  }
  b.fill(fill, 32 * 1024);
  return b;
}

export function backupOpsSuite(): void {
  describe('backups: restore, verify, delete, import', () => {
    let s: InProcessServer;
    let vm: Vm;
    let root: string;
    const finished = async (task: Task): Promise<Task> => {
      await s.built.tasks.idle();
      return ((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task;
    };
    const fixture = (parent: string | null, edit?: (m: any) => void): { id: string; dir: string } => {
      const id = crypto.randomUUID();
      const dir = path.join(root, vm.id, id);
      fs.mkdirSync(dir, { recursive: true });
      const bytes = qcow2(parent ? `../${parent}/disk0.qcow2` : null, parent ? 0x22 : 0x11);
      fs.writeFileSync(path.join(dir, 'disk0.qcow2'), bytes);
      const m = {
        schema: 1,
        id,
        kind: parent ? 'incremental' : 'full',
        parent,
        createdAt: new Date().toISOString(),
        frozen: false,
        qemuVersion: '7.2.0',
        vm,
        disks: [
          {
            index: 0,
            file: 'disk0.qcow2',
            source: vm.disks[0].path,
            sourceFormat: 'qcow2',
            virtualSize: GiB,
            sizeBytes: bytes.length,
            sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
            backing: parent ? `../${parent}/disk0.qcow2` : null,
          },
        ],
      };
      edit?.(m);
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
      return { id, dir };
    };
    const imported = async (dir: string): Promise<Task> => {
      const r = await s.api('POST', '/backups/import', { path: dir });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(TaskEnvelope, r.body);
      return finished((r.body as TaskEnvelope).task);
    };

    beforeAll(async () => {
      s = await startInProcess();
      root = path.join(s.dataDir, 'backups');
      fs.mkdirSync(root, { recursive: true });
      const d = await s.api('POST', '/disks', { name: 'bsrc-disk0', size: 1, format: 'qcow2' });
      await s.built.tasks.idle();
      const disk = (d.body as { disk: Disk }).disk;
      vm = ((await s.api('POST', '/vms', { name: 'bsrc', cpus: 1, memory: 96 })).body as VmEnvelope).vm;
      expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
      vm = ((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm;
    });
    afterAll(async () => {
      await s.close();
    });

    it('import: a full, then its incremental; refusals change nothing', async () => {
      const full = fixture(null);
      const incr = fixture(full.id);
      expectError(await s.api('POST', '/backups/import', { path: incr.dir }), 'FILE_MISSING', 409, /import .* first/);
      expect(await imported(full.dir)).toMatchObject({ kind: 'backup.import', status: 'succeeded' });
      expect(await imported(incr.dir)).toMatchObject({ status: 'succeeded' });
      expectError(await s.api('POST', '/backups/import', { path: full.dir }), 'NAME_TAKEN', 409, /listed already/);
      expectError(await s.api('POST', '/backups/import', { path: '/etc' }), 'PATH_NOT_ALLOWED', 400, /not inside a backup target/);
      expectError(await s.api('POST', '/backups/import', { path: 'relative/x' }), 'PATH_NOT_ALLOWED', 400, /absolute/);
      expectError(await s.api('POST', '/backups/import', { path: path.join(root, vm.id) }), 'PATH_NOT_ALLOWED', 400, /not a backup directory/);
      expectError(await s.api('POST', '/backups/import', { path: path.join(root, vm.id, crypto.randomUUID()) }), 'FILE_NOT_FOUND', 404, /does not exist/);
      const evil = fixture(null, (m) => (m.disks[0].file = '../x'));
      expectError(await s.api('POST', '/backups/import', { path: evil.dir }), 'VALIDATION', 400, /disk<index>\.qcow2/);
      const junk = fixture(null, (m) => (m.schema = 2));
      expectError(await s.api('POST', '/backups/import', { path: junk.dir }), 'VALIDATION', 400, /not a backup manifest/);
      const bad = fixture(null, (m) => (m.disks[0].sha256 = 'b'.repeat(64)));
      const t = await imported(bad.dir);
      expect(t.status).toBe('failed');
      expect(t.error).toMatch(/sha256/);
      expectError(await s.api('POST', `/backups/${bad.id}/verify`), 'BACKUP_NOT_FOUND', 404, /Backup not found/);
      expect((await s.api('POST', '/backups/import', { path: full.dir, extra: 1 })).status).toBe(400);

      // verify: ok, then a file qemu-img check calls corrupt
      const v = await s.api('POST', `/backups/${incr.id}/verify`);
      expect(v.status).toBe(202);
      expect(await finished((v.body as TaskEnvelope).task)).toMatchObject({ kind: 'backup.verify', status: 'succeeded' });

      // restore as new
      const r = await s.api('POST', `/backups/${incr.id}/restore`, { as: 'new', name: 'brest' });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const rt = await finished((r.body as TaskEnvelope).task);
      expect(rt, rt.error ?? '').toMatchObject({ kind: 'backup.restore', status: 'succeeded' });
      const made = ((await s.api('GET', `/vms/${rt.result!.vm as string}`)).body as VmEnvelope).vm;
      expect(made).toMatchObject({ name: 'brest', cpus: 1, memory: 96 });
      expect(made.mac).not.toBe(vm.mac);
      expect(path.basename(made.disks[0].path)).toBe('brest-disk0.qcow2');
      expectError(await s.api('POST', `/backups/${incr.id}/restore`, { as: 'new', name: 'brest' }), 'NAME_TAKEN', 409, /already exists/);
      expect((await s.api('POST', `/backups/${incr.id}/restore`, { as: 'sideways' })).status).toBe(400);

      // replace: running refused, stopped done
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expectError(await s.api('POST', `/backups/${full.id}/restore`, { as: 'replace' }), 'VM_NOT_STOPPED', 409, /stop it first/);
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      const rep = await s.api('POST', `/backups/${full.id}/restore`, { as: 'replace' });
      expect(rep.status).toBe(202);
      expect(await finished((rep.body as TaskEnvelope).task)).toMatchObject({ status: 'succeeded' });
      expect(fs.readFileSync(vm.disks[0].path).equals(fs.readFileSync(path.join(full.dir, 'disk0.qcow2')))).toBe(true);

      // a disk a linked clone backs onto keeps its content
      const lc = await s.api('POST', `/disks/${vm.disks[0].diskId}/clone`, { name: 'bsrc-linked', mode: 'linked' });
      expect(lc.status, JSON.stringify(lc.body)).toBe(202);
      expect(await finished((lc.body as TaskEnvelope).task)).toMatchObject({ status: 'succeeded' });
      expectError(await s.api('POST', `/backups/${full.id}/restore`, { as: 'replace' }), 'DISK_HAS_CHILDREN', 409, /backing file of disk bsrc-linked/);

      // delete the full: merged into the incremental, which becomes full
      const del = await s.api('DELETE', `/backups/${full.id}`);
      expect(del.status).toBe(202);
      expect(await finished((del.body as TaskEnvelope).task)).toMatchObject({ kind: 'backup.delete', status: 'succeeded' });
      expect(fs.existsSync(full.dir)).toBe(false);
      const m = JSON.parse(fs.readFileSync(path.join(incr.dir, 'manifest.json'), 'utf8'));
      expect(m).toMatchObject({ kind: 'full', parent: null });
      expectError(await s.api('DELETE', `/backups/${full.id}`), 'BACKUP_NOT_FOUND', 404, /Backup not found/);

      // verify finds what check reports; then the backup is corrupt and not restored
      s.images.corrupt.add(fs.realpathSync(path.join(incr.dir, 'disk0.qcow2')));
      const bad2 = await finished(((await s.api('POST', `/backups/${incr.id}/verify`)).body as TaskEnvelope).task);
      expect(bad2.status).toBe('failed');
      expect(bad2.error).toMatch(/disk0\.qcow2.*corruption/);
      expectError(await s.api('POST', `/backups/${incr.id}/restore`, { as: 'new', name: 'brest2' }), 'IMAGE_NOT_ALLOWED', 400, /corrupt/);
      expectError(await s.api('POST', `/backups/${crypto.randomUUID()}/restore`, { as: 'replace' }), 'BACKUP_NOT_FOUND', 404, /Backup not found/);

      // a leaf delete
      const leaf = await s.api('DELETE', `/backups/${incr.id}`);
      expect(await finished((leaf.body as TaskEnvelope).task)).toMatchObject({ status: 'succeeded' });
      expect(fs.existsSync(incr.dir)).toBe(false);
    });
  });
}
