/** Snapshots: every route and refusal over the fake runtime and image tool. */
import { SnapshotListEnvelope, SnapshotTaskEnvelope, type Disk, type Snapshot, type Task, type Vm } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../packages/server/src/lib/errors.js';
import { openDb } from '../../../packages/server/src/store/sqlite.js';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function snapshotSuite(): void {
  describe('snapshot routes', () => {
    let s: InProcessServer;

    const makeVm = async (name: string): Promise<Vm> => (await s.api('POST', '/vms', { name, cpus: 1, memory: 64 })).body.vm as Vm;
    const makeDisk = async (name: string, format: 'qcow2' | 'raw' = 'qcow2'): Promise<Disk> => {
      const disk = (await s.api('POST', '/disks', { name, size: 1, format })).body.disk as Disk;
      await s.built.tasks.idle();
      return disk;
    };
    const attach = async (vm: Vm, disk: Disk) => expect((await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    /** The task a 202 answered with, once it has ended. */
    const ended = async (r: { status: number; body: unknown }): Promise<Task> => {
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(SnapshotTaskEnvelope, r.body);
      await s.built.tasks.idle();
      return (await s.api('GET', `/tasks/${(r.body as SnapshotTaskEnvelope).task.id}`)).body.task as Task;
    };
    const list = async (vm: Vm): Promise<Snapshot[]> => {
      const r = await s.api('GET', `/vms/${vm.id}/snapshots`);
      expect(r.status).toBe(200);
      expectShape(SnapshotListEnvelope, r.body);
      return (r.body as SnapshotListEnvelope).snapshots;
    };

    beforeAll(async () => {
      s = await startInProcess();
      s.runtime.images = s.images;
    });
    afterAll(async () => {
      await s.close();
    });

    it('a stopped VM: take (qemu-img in every disk), a tree through parent, revert, delete', async () => {
      const vm = await makeVm('snap-stopped');
      const [a, b] = [await makeDisk('snap-a'), await makeDisk('snap-b')];
      await attach(vm, a);
      await attach(vm, b);
      expect(await list(vm)).toEqual([]);

      const t1 = await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'one', description: 'first' }));
      expect(t1).toMatchObject({ kind: 'vm.snapshot', status: 'succeeded', target: { vm: vm.id }, result: { snapshot: 'one' } });
      expect(s.images.hasSnapshot(a.path, 'one') && s.images.hasSnapshot(b.path, 'one')).toBe(true);
      await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'two' }));
      expect(await list(vm)).toEqual([
        { name: 'one', description: 'first', createdAt: expect.any(String), vmState: false, parent: null, current: false, sizeBytes: 0, disks: [a.path, b.path] },
        { name: 'two', description: '', createdAt: expect.any(String), vmState: false, parent: 'one', current: true, sizeBytes: 0, disks: [a.path, b.path] },
      ]);
      expectError(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'two' }), 'NAME_TAKEN', 409, 'VM snap-stopped already has a snapshot named two');

      const rv = await ended(await s.api('POST', `/vms/${vm.id}/snapshots/one/revert`));
      expect(rv).toMatchObject({ kind: 'vm.revert', status: 'succeeded' });
      expect(s.images.applied.slice(-2)).toEqual([`${a.path}@one`, `${b.path}@one`]);
      // A snapshot taken after the revert hangs on the one reverted to: a tree.
      await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'three' }));
      const tree = await list(vm);
      expect(tree.map((x) => [x.name, x.parent, x.current])).toEqual([['one', null, false], ['two', 'one', false], ['three', 'one', true]]);

      // Deleting a snapshot with children: they hang on its parent; the images lose only that tag.
      const del = await ended(await s.api('DELETE', `/vms/${vm.id}/snapshots/one`));
      expect(del).toMatchObject({ kind: 'vm.snapshot.delete', status: 'succeeded' });
      expect((await list(vm)).map((x) => [x.name, x.parent, x.current])).toEqual([['two', null, false], ['three', null, true]]);
      expect(s.images.hasSnapshot(a.path, 'one')).toBe(false);
      expect(s.images.hasSnapshot(a.path, 'two')).toBe(true);
      // Deleting the current one makes its parent (none here) current.
      await ended(await s.api('DELETE', `/vms/${vm.id}/snapshots/three`));
      expect((await list(vm)).map((x) => [x.name, x.current])).toEqual([['two', false]]);
    });

    it('a running VM: disks only or with memory over the runtime; only a memory snapshot reverts live', async () => {
      const vm = await makeVm('snap-live');
      const d = await makeDisk('snap-live-d');
      await attach(vm, d);
      expectError(
        await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'mem', includeMemory: true }),
        'VM_NOT_RUNNING',
        409,
        'VM snap-live is stopped: it has no memory to save; take the snapshot without includeMemory',
      );
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'mem', includeMemory: true }));
      await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'disks' }));
      expect(s.runtime.count('saveSnapshot')).toBe(2);
      expect(await list(vm)).toMatchObject([
        { name: 'mem', vmState: true, sizeBytes: 4096, parent: null },
        { name: 'disks', vmState: false, sizeBytes: 0, parent: 'mem', current: true },
      ]);
      expectError(
        await s.api('POST', `/vms/${vm.id}/snapshots/disks/revert`),
        'VM_NOT_STOPPED',
        409,
        'Snapshot disks holds the disks only, not the memory of the running VM: stop VM snap-live first, then revert',
      );
      const rv = await ended(await s.api('POST', `/vms/${vm.id}/snapshots/mem/revert`));
      expect(rv.status).toBe('succeeded');
      expect(s.runtime.count('loadSnapshot')).toBe(1);
      expect((await list(vm)).find((x) => x.current)?.name).toBe('mem');
      await ended(await s.api('DELETE', `/vms/${vm.id}/snapshots/disks`));
      expect(s.runtime.count('deleteSnapshot')).toBe(1);

      // The VM's lock is held while a snapshot task runs: a second operation is 409 at once.
      const gate = s.runtime.hold('saveSnapshot');
      const held = await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'slow' });
      expect(held.status).toBe(202);
      await gate.reached;
      expectError(await s.api('POST', `/vms/${vm.id}/stop`), 'VM_BUSY', 409, 'VM is busy: configure is in progress');
      expectError(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'other' }), 'VM_BUSY', 409, 'VM is busy: configure is in progress');
      // QEMU's snapshot job cannot be stopped half-way: a cancel that comes while it runs waits for it,
      // and the task then says what happened (succeeded, the snapshot listed), never "cancelled".
      const cancel = s.api('DELETE', `/tasks/${(held.body as SnapshotTaskEnvelope).task.id}`);
      gate.release();
      const answered = await cancel;
      expect(answered.status).toBe(200);
      expect(answered.body.task).toMatchObject({ status: 'succeeded', result: { snapshot: 'slow' } });
      await s.built.tasks.idle();
      expect((await list(vm)).map((x) => x.name)).toEqual(['mem', 'slow']);

      // QEMU's refusal fails the task with its words; no row is written.
      s.runtime.failNext('saveSnapshot', new AppError('QEMU_ERROR', 'QEMU could not complete the snapshot: no space'));
      const failed = await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'nospace', includeMemory: true }));
      expect(failed).toMatchObject({ status: 'failed', error: 'QEMU could not complete the snapshot: no space' });
      expect((await list(vm)).map((x) => x.name)).toEqual(['mem', 'slow']);
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('refusals: non-qcow2 disk, no disk, changed disks, unknown names, bad names; nothing changes', async () => {
      const vm = await makeVm('snap-refuse');
      expectError(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'x' }), 'SNAPSHOT_UNSUPPORTED', 409, 'VM snap-refuse has no disk: there is nothing to snapshot');
      const q = await makeDisk('snap-q');
      const raw = await makeDisk('snap-raw', 'raw');
      await attach(vm, q);
      await attach(vm, raw);
      expectError(
        await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'x' }),
        'SNAPSHOT_UNSUPPORTED',
        409,
        `Cannot take a snapshot of VM snap-refuse: disk snap-raw (${raw.path}) is raw; only qcow2 disks have snapshots`,
      );
      expect(s.images.hasSnapshot(q.path, 'x')).toBe(false);
      expect((await s.api('POST', `/vms/${vm.id}/disks/detach`, { diskPath: raw.path })).status).toBe(200);
      await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'x' }));

      // Disks attached since: revert refused, naming both sets.
      const extra = await makeDisk('snap-extra');
      await attach(vm, extra);
      expectError(
        await s.api('POST', `/vms/${vm.id}/snapshots/x/revert`),
        'SNAPSHOT_UNSUPPORTED',
        409,
        `The disks of VM snap-refuse changed since snapshot x was taken (it has ${q.path}; the VM has ${q.path}, ${extra.path}): attach the same disks to revert`,
      );
      expect((await s.api('POST', `/vms/${vm.id}/disks/detach`, { diskPath: extra.path })).status).toBe(200);

      for (const [method, url] of [['POST', `/vms/${vm.id}/snapshots/nope/revert`], ['DELETE', `/vms/${vm.id}/snapshots/nope`]] as const) {
        expectError(await s.api(method, url), 'SNAPSHOT_NOT_FOUND', 404, 'VM snap-refuse has no snapshot named nope');
      }
      expectError(await s.api('GET', '/vms/nothing/snapshots'), 'VM_NOT_FOUND', 404, 'VM not found: nothing');
      expectError(await s.api('POST', '/vms/nothing/snapshots', { name: 'a' }), 'VM_NOT_FOUND', 404, 'VM not found: nothing');
      expectError(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: '-dash' }), 'VALIDATION', 400, /^body\.name may only contain letters/);
      // Digits only: QEMU would take it for a snapshot id.
      expectError(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: '12' }), 'VALIDATION', 400, 'body.name may not be digits only (12): QEMU would take it for the id of another snapshot');
      expectError(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'ok', extra: 1 }), 'VALIDATION', 400, 'body has an unknown field: extra');

      // A tag already in an image (made by hand): the task fails, nothing is recorded.
      s.images.addSnapshot(q.path, { name: 'byhand', vmStateBytes: 0, date: new Date().toISOString() });
      const t = await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'byhand' }));
      expect(t).toMatchObject({ status: 'failed', error: `The image ${q.path} already has an internal snapshot named byhand (not made by this server)` });
      // A snapshot gone from an image: the revert fails before any image is reverted.
      s.images.dropSnapshot(q.path, 'x');
      const applied = s.images.applied.length;
      const rv = await ended(await s.api('POST', `/vms/${vm.id}/snapshots/x/revert`));
      expect(rv).toMatchObject({ status: 'failed', error: `The image ${q.path} no longer has the snapshot x; nothing was reverted` });
      expect(s.images.applied.length).toBe(applied);
      expect((await list(vm)).map((x) => x.name)).toEqual(['x']);
    });

    it('a failure half-way takes back the disks already done; deleting the VM deletes its snapshot rows', async () => {
      const vm = await makeVm('snap-gone');
      const [a, b] = [await makeDisk('snap-g1'), await makeDisk('snap-g2')];
      await attach(vm, a);
      await attach(vm, b);
      // The second image refuses: the first one's new snapshot is deleted again.
      const real = s.images.snapshot.bind(s.images);
      let calls = 0;
      s.images.snapshot = async (file, format, op, tag) => {
        if (op === 'create' && ++calls === 2) throw new Error('qemu-img failed');
        return real(file, format, op, tag);
      };
      try {
        const t = await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'half' }));
        expect(t.status).toBe('failed');
      } finally {
        s.images.snapshot = real;
      }
      expect(s.images.hasSnapshot(a.path, 'half') || s.images.hasSnapshot(b.path, 'half')).toBe(false);
      expect(await list(vm)).toEqual([]);

      await ended(await s.api('POST', `/vms/${vm.id}/snapshots`, { name: 'kept' }));
      expect((await s.api('DELETE', `/vms/${vm.id}`)).status).toBe(200);
      const db = openDb(path.join(s.dataDir, 'db.sqlite'));
      try {
        expect(db.prepare('SELECT count(*) AS n FROM vm_snapshots WHERE vm_id = ?').get(vm.id)).toEqual({ n: 0 });
      } finally {
        db.close();
      }
      expect(fs.existsSync(a.path)).toBe(true);
    });
  });
}
