/** Backups, engine and targets (issue 13): every route and refusal over the fake runtime and image tool. */
import { BackupEnvelope, BackupListEnvelope, BackupTargetEnvelope, BackupTargetListEnvelope, BackupTaskEnvelope, type Backup, type Disk, type Task, type Vm } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../../../packages/server/src/store/sqlite.js';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function backupEngineSuite(): void {
  describe('backups: engine and targets', () => {
    let s: InProcessServer;
    let outside = ''; // made in beforeAll: a filtered run that skips this suite runs no afterAll
    const made: string[] = []; // temporary directories this suite removes at the end

    const makeVm = async (name: string): Promise<Vm> => (await s.api('POST', '/vms', { name, cpus: 1, memory: 64 })).body.vm as Vm;
    const makeDisk = async (name: string, format: 'qcow2' | 'raw' = 'qcow2'): Promise<Disk> => {
      const disk = (await s.api('POST', '/disks', { name, size: 1, format })).body.disk as Disk;
      await s.built.tasks.idle();
      return disk;
    };
    const attach = async (vm: Vm, disk: Disk) => expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    const ended = async (r: { status: number; body: unknown }): Promise<Task> => {
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(BackupTaskEnvelope, r.body);
      await s.built.tasks.idle();
      return (await s.api('GET', `/tasks/${(r.body as BackupTaskEnvelope).task.id}`)).body.task as Task;
    };
    const backupOf = async (id: string): Promise<Backup> => {
      const r = await s.api('GET', `/backups/${id}`);
      expect(r.status).toBe(200);
      expectShape(BackupEnvelope, r.body);
      return (r.body as BackupEnvelope).backup;
    };
    const defaultDir = () => path.join(s.dataDir, 'backups');

    beforeAll(async () => {
      outside = makeTempDir('qm-bt-');
      made.push(outside);
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
      for (const d of made) fs.rmSync(d, { recursive: true, force: true });
    });

    it('targets: the default is listed with its free space; add, refusals with nothing changed, remove', async () => {
      const list = await s.api('GET', '/backup-targets');
      expect(list.status).toBe(200);
      expectShape(BackupTargetListEnvelope, list.body);
      expect(list.body.targets).toEqual([
        { name: 'default', path: fs.realpathSync(defaultDir()), default: true, freeBytes: expect.any(Number), totalBytes: expect.any(Number), backups: 0 },
      ]);
      expect(list.body.targets[0].totalBytes).toBeGreaterThan(0);

      const file = path.join(outside, 'plain-file');
      fs.writeFileSync(file, 'x');
      expectError(await s.api('POST', '/backup-targets', { name: 'rel', path: 'backups/here' }), 'VALIDATION', 400, 'The target path must be absolute: backups/here');
      expectError(await s.api('POST', '/backup-targets', { name: 'file', path: file }), 'VALIDATION', 400, `The target path is not a directory: ${file}`);
      expectError(await s.api('POST', '/backup-targets', { name: 'none', path: path.join(outside, 'nope') }), 'VALIDATION', 400, `The target directory does not exist: ${path.join(outside, 'nope')}`);
      const disksDir = path.join(s.dataDir, 'disks');
      fs.mkdirSync(path.join(disksDir, 'sub'), { recursive: true });
      const inDisks = await s.api('POST', '/backup-targets', { name: 'indisks', path: path.join(disksDir, 'sub') });
      expectError(inDisks, 'PATH_NOT_ALLOWED', 400, /^The target cannot be inside the disk directory/);
      // a symlink to the disk directory is judged by where it leads
      const link = path.join(outside, 'link-to-disks');
      fs.symlinkSync(disksDir, link);
      expectError(await s.api('POST', '/backup-targets', { name: 'linked', path: link }), 'PATH_NOT_ALLOWED', 400, /^The target cannot be inside the disk directory .*link-to-disks \(/);
      expectError(await s.api('POST', '/backup-targets', { name: 'data', path: s.dataDir }), 'PATH_NOT_ALLOWED', 400, `The target cannot be the data directory itself: ${s.dataDir}`);
      expectError(await s.api('POST', '/backup-targets', { name: 'run', path: path.join(s.dataDir, 'run') }), 'PATH_NOT_ALLOWED', 400, /^The target cannot be inside the run directory/);
      expectError(await s.api('POST', '/backup-targets', { name: 'default', path: outside }), 'NAME_TAKEN', 409, 'A backup target named default already exists');
      expectError(await s.api('POST', '/backup-targets', { name: 'again', path: defaultDir() }), 'NAME_TAKEN', 409, /is already the backup target default$/);
      expect((await s.api('GET', '/backup-targets')).body.targets).toHaveLength(1);

      const add = await s.api('POST', '/backup-targets', { name: 'nas', path: outside });
      expect(add.status).toBe(201);
      expectShape(BackupTargetEnvelope, add.body);
      expect(add.body.target).toMatchObject({ name: 'nas', path: fs.realpathSync(outside), default: false, backups: 0 });
      expectError(await s.api('POST', '/backup-targets', { name: 'nas2', path: outside + '/' }), 'NAME_TAKEN', 409, /is already the backup target nas$/);

      expectError(await s.api('DELETE', '/backup-targets/default'), 'TARGET_IN_USE', 409, 'The default backup target cannot be removed');
      expectError(await s.api('DELETE', '/backup-targets/nope'), 'TARGET_NOT_FOUND', 404, 'Backup target not found: nope');
      // a schedule that names it keeps it
      const db = openDb(path.join(s.dataDir, 'db.sqlite'));
      db.prepare("INSERT INTO backup_schedules (id, name, vms, target, every, retention, created_at) VALUES ('s1', 'nightly', '\"all\"', 'nas', 'daily', '{}', '2024-01-01T00:00:00Z')").run();
      expectError(await s.api('DELETE', '/backup-targets/nas'), 'TARGET_IN_USE', 409, '1 backup schedule writes to the target nas; change them first');
      db.prepare("DELETE FROM backup_schedules WHERE id = 's1'").run();
      db.close();
      const del = await s.api('DELETE', '/backup-targets/nas');
      expect(del.status).toBe(200);
      expect(fs.existsSync(outside)).toBe(true);
      expect((await s.api('GET', '/backup-targets')).body.targets.map((t: { name: string }) => t.name)).toEqual(['default']);
    });

    it('a stopped VM: a full copy of each disk into the target, listed with its manifest; list filters; get; refusals', async () => {
      const vm = await makeVm('bk-stopped');
      expectError(await s.api('POST', `/vms/${vm.id}/backups`, {}), 'VALIDATION', 400, 'VM bk-stopped has no disks to back up');
      const d = await makeDisk('bk-stopped-0');
      await attach(vm, d);
      expectError(await s.api('POST', '/vms/nope/backups', {}), 'VM_NOT_FOUND', 404, 'VM not found: nope');
      expectError(await s.api('POST', `/vms/${vm.id}/backups`, { target: 'nowhere' }), 'TARGET_NOT_FOUND', 404, 'Backup target not found: nowhere');
      expectError(await s.api('POST', `/vms/${vm.id}/backups`, { mode: 'sometimes' }), 'VALIDATION', 400, /mode/);
      const t = await ended(await s.api('POST', `/vms/${vm.id}/backups`, { mode: 'incremental' }));
      expect(t).toMatchObject({ kind: 'backup.create', status: 'succeeded', target: { vm: vm.id }, result: { kind: 'full', notes: ['The VM is stopped: a stopped VM is backed up in full'] } });
      const id = (t.result as { backup: string }).backup;
      const b = await backupOf(id);
      expect(b).toMatchObject({ id, vm: vm.id, vmName: 'bk-stopped', target: 'default', kind: 'full', parent: null, state: 'ok', frozen: false, verifiedAt: null });
      expect(b.disks).toEqual([{ index: 0, file: 'disk0.qcow2', source: d.path, sourceFormat: 'qcow2', virtualSize: expect.any(Number), sizeBytes: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/), backing: null }]);
      const dir = path.join(fs.realpathSync(defaultDir()), vm.id, id);
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      expect(manifest).toMatchObject({ schema: 1, id, kind: 'full', parent: null, frozen: false, qemuVersion: '7.2.0-fake', vm: { id: vm.id, name: 'bk-stopped' } });
      expect(fs.readdirSync(path.dirname(dir))).toEqual([id]);

      const all = await s.api('GET', '/backups');
      expect(all.status).toBe(200);
      expectShape(BackupListEnvelope, all.body);
      expect(all.body.backups.map((x: Backup) => x.id)).toContain(id);
      expect((await s.api('GET', `/backups?vm=${vm.id}`)).body.backups.map((x: Backup) => x.id)).toEqual([id]);
      expect((await s.api('GET', '/backups?vm=other')).body.backups).toEqual([]);
      expect((await s.api('GET', '/backups?target=default&vm=' + vm.id)).body.backups).toHaveLength(1);
      expectError(await s.api('GET', '/backups?colour=red'), 'VALIDATION', 400, /colour|additional/i);
      expectError(await s.api('GET', '/backups/nope'), 'BACKUP_NOT_FOUND', 404, 'Backup not found: nope');
      expect((await s.api('GET', '/backup-targets')).body.targets[0].backups).toBeGreaterThanOrEqual(1);
    });

    it('fsfreeze (issue 14): a live backup with an answering guest agent freezes right before the jobs and thaws right after (frozen: true); a disk-only live snapshot too, a memory one never; no agent: frozen false', async () => {
      const vm = await makeVm('bk-freeze');
      const d = await makeDisk('bk-freeze-0');
      await attach(vm, d);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      const calls = () => s.runtime.agentCalls.filter((c) => c.endsWith(` ${vm.id}`)).map((c) => c.split(' ')[0]);

      const plain = await ended(await s.api('POST', `/vms/${vm.id}/backups`, {}));
      expect(plain.status).toBe('succeeded');
      expect((await backupOf((plain.result as { backup: string }).backup)).frozen).toBe(false);
      expect(calls()).toEqual([]);

      s.runtime.agents.set(vm.id, {});
      const before = s.runtime.backups.length;
      const t = await ended(await s.api('POST', `/vms/${vm.id}/backups`, { mode: 'full' }));
      expect(t.status).toBe('succeeded');
      const b = await backupOf((t.result as { backup: string }).backup);
      expect(b.frozen).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(defaultDir(), vm.id, b.id, 'manifest.json'), 'utf8'))).toMatchObject({ frozen: true });
      expect(calls()).toEqual(['freeze', 'thaw']);
      expect(s.runtime.backups.length).toBe(before + 1);

      const snap = await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'disk-only' });
      expect(snap.status, JSON.stringify(snap.body)).toBe(202);
      await s.built.tasks.idle();
      expect(calls()).toEqual(['freeze', 'thaw', 'freeze', 'thaw']);
      const withMemory = await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'with-memory', includeMemory: true });
      expect(withMemory.status, JSON.stringify(withMemory.body)).toBe(202);
      await s.built.tasks.idle();
      expect(calls()).toEqual(['freeze', 'thaw', 'freeze', 'thaw']);
      s.runtime.agents.delete(vm.id);
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('a running VM: full, then incremental on the recorded bitmap (new bitmap kept, old one removed), mode full; VM busy meanwhile', async () => {
      const vm = await makeVm('bk-live');
      const d = await makeDisk('bk-live-0');
      await attach(vm, d);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);

      const t1 = await ended(await s.api('POST', `/vms/${vm.id}/backups`, {}));
      expect(t1).toMatchObject({ status: 'succeeded', result: { kind: 'full', notes: ['No earlier backup to build on: the backup is full'] } });
      const b1 = (t1.result as { backup: string }).backup;
      expect([...(s.runtime.bitmaps.get(vm.id)?.get(0)?.keys() ?? [])]).toEqual([`qm-${b1}`]);

      const held = s.runtime.hold('backup');
      const r2 = await s.api('POST', `/vms/${vm.id}/backups`, {});
      await held.reached;
      expectError(await s.api('POST', `/vms/${vm.id}/stop`), 'VM_BUSY', 409, 'VM is busy: backup is in progress');
      expectError(await s.api('POST', `/vms/${vm.id}/backups`, {}), 'VM_BUSY', 409, 'VM is busy: backup is in progress');
      held.release();
      const t2 = await ended(r2);
      expect(t2).toMatchObject({ status: 'succeeded', result: { kind: 'incremental', notes: [] } });
      const b2 = (t2.result as { backup: string }).backup;
      expect(s.runtime.backups.at(-1)!.disks).toEqual([{ index: 0, file: expect.stringContaining(`.partial-${b2}`), bitmap: `qm-${b1}`, newBitmap: `qm-${b2}` }]);
      expect(await backupOf(b2)).toMatchObject({ kind: 'incremental', parent: b1, disks: [{ backing: `../${b1}/disk0.qcow2` }] });
      expect([...(s.runtime.bitmaps.get(vm.id)?.get(0)?.keys() ?? [])]).toEqual([`qm-${b2}`]);

      // a stale bitmap of ours (a crash between the steps) is removed; mode full starts over
      s.runtime.bitmaps.get(vm.id)!.get(0)!.set('qm-stale', true);
      const t3 = await ended(await s.api('POST', `/vms/${vm.id}/backups`, { mode: 'full' }));
      expect(t3).toMatchObject({ status: 'succeeded', result: { kind: 'full' } });
      const b3 = (t3.result as { backup: string }).backup;
      expect([...(s.runtime.bitmaps.get(vm.id)?.get(0)?.keys() ?? [])]).toEqual([`qm-${b3}`]);

      // a bitmap QEMU could not save (inconsistent) means a full backup, said so
      s.runtime.bitmaps.get(vm.id)!.get(0)!.set(`qm-${b3}`, false);
      const t4 = await ended(await s.api('POST', `/vms/${vm.id}/backups`, {}));
      expect(t4).toMatchObject({ status: 'succeeded', result: { kind: 'full', notes: [expect.stringMatching(/bitmap of disk 1 is gone or was not saved/)] } });

      // a failed job: no backup listed, no partial left, its new bitmap removed, the old one kept
      const before = (await s.api('GET', `/backups?vm=${vm.id}`)).body.backups.length;
      const keep = [...s.runtime.bitmaps.get(vm.id)!.get(0)!.keys()];
      s.runtime.failNext('backup', new Error('The backup job failed: No space left on device'));
      const t5 = await ended(await s.api('POST', `/vms/${vm.id}/backups`, {}));
      expect(t5.status).toBe('failed');
      expect(t5.error).toMatch(/^No space left on the backup target default/);
      expect((await s.api('GET', `/backups?vm=${vm.id}`)).body.backups).toHaveLength(before);
      expect(fs.readdirSync(path.join(defaultDir(), vm.id)).filter((n) => n.startsWith('.partial-'))).toEqual([]);
      expect([...s.runtime.bitmaps.get(vm.id)!.get(0)!.keys()]).toEqual(keep);
      expect(s.runtime.running(vm.id)).toBe(true);

      // an incremental needs its parent in the same target
      const other = makeTempDir('qm-bt2-');
      made.push(other);
      expect((await s.api('POST', '/backup-targets', { name: 'second', path: other })).status).toBe(201);
      const t6 = await ended(await s.api('POST', `/vms/${vm.id}/backups`, { target: 'second' }));
      expect(t6).toMatchObject({ status: 'succeeded', result: { kind: 'full', notes: [expect.stringMatching(/in the target default/)] } });
      expect((await s.api('GET', '/backups?target=second')).body.backups).toHaveLength(1);
      expectError(await s.api('DELETE', '/backup-targets/second'), 'TARGET_IN_USE', 409, 'The backup target second holds 1 listed backup; delete them first');
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('at start: .partial-* directories go, backups whose directory is gone are missing, jobs left in adopted VMs are cleared', async () => {
      const vm = await makeVm('bk-crash');
      const d = await makeDisk('bk-crash-0');
      await attach(vm, d);
      const t = await ended(await s.api('POST', `/vms/${vm.id}/backups`, {}));
      const id = (t.result as { backup: string }).backup;
      const vmDir = path.join(defaultDir(), vm.id);
      fs.mkdirSync(path.join(vmDir, '.partial-left'));
      fs.writeFileSync(path.join(vmDir, '.partial-left', 'disk0.qcow2'), 'half');
      fs.rmSync(path.join(vmDir, id), { recursive: true });
      const dataDir = s.dataDir;
      await s.app.close();
      s = await startInProcess({ dataDir });
      expect(fs.readdirSync(vmDir)).toEqual([]);
      expect((await backupOf(id)).state).toBe('missing');
    });

    it('at start: a complete backup directory a crash left with no row is listed again through the import', async () => {
      const vm = await makeVm('bk-unlisted');
      const d = await makeDisk('bk-unlisted-0');
      await attach(vm, d);
      const t = await ended(await s.api('POST', `/vms/${vm.id}/backups`, {}));
      const id = (t.result as { backup: string }).backup;
      const dataDir = s.dataDir;
      await s.app.close();
      // The crash: the directory was renamed into place, the row never written.
      const db = openDb(path.join(dataDir, 'db.sqlite'));
      db.prepare('DELETE FROM backups WHERE id = ?').run(id);
      db.close();
      s = await startInProcess({ dataDir });
      await s.built.tasks.idle();
      const tasks = (await s.api('GET', '/tasks')).body.tasks as Task[];
      expect(tasks.find((x) => x.kind === 'backup.import')).toMatchObject({ status: 'succeeded' });
      expect(await backupOf(id)).toMatchObject({ id, state: 'ok', vm: vm.id });
    });
  });
}
