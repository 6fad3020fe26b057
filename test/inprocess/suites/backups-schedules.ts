/**
 * Backups: schedules and retention. The routes through the whole app (every route, every refusal);
 * the scheduler itself over the real task service, schedule and backup repos and SQLite, with a
 * fake backup engine and delete (they are other parts) and a clock the test sets.
 */
import {
  BackupScheduleEnvelope,
  BackupScheduleListEnvelope,
  BackupTaskEnvelope,
  MessageBody,
  type BackupManifest,
  type BackupSchedule,
  type ServerEvent,
  type Task,
  type Vm,
} from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BackupRepo, type BackupRecord } from '../../../packages/server/src/backups/repo.js';
import { ScheduleRepo } from '../../../packages/server/src/backups/schedule-repo.js';
import { BackupScheduler, type BackupPruner, type BackupRunner } from '../../../packages/server/src/backups/scheduler.js';
import { BackupSchedules } from '../../../packages/server/src/backups/schedules.js';
import { EventBus } from '../../../packages/server/src/events/bus.js';
import { AppError } from '../../../packages/server/src/lib/errors.js';
import { openDb, type Db } from '../../../packages/server/src/store/sqlite.js';
import { TaskRepo } from '../../../packages/server/src/tasks/repo.js';
import { TaskService } from '../../../packages/server/src/tasks/service.js';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';
import { PASSWORD } from './auth.js';

const silent = { info() {}, warn() {}, error() {} };

export function backupScheduleSuite(): void {
  describe('backup schedule routes', () => {
    let s: InProcessServer;
    let vm: Vm;

    const makeVm = async (name: string): Promise<Vm> => (await s.api('POST', '/vms', { name, cpus: 1, memory: 64 })).body.vm as Vm;
    const create = async (body: Record<string, unknown>): Promise<BackupSchedule> => {
      const r = await s.api('POST', '/backup-schedules', body);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(BackupScheduleEnvelope, r.body);
      return (r.body as BackupScheduleEnvelope).schedule;
    };

    beforeAll(async () => {
      s = await startInProcess();
      vm = await makeVm('sched-a');
    });
    afterAll(async () => {
      await s.close();
    });

    it('POST makes a schedule (target default, enabled, next run computed), GET lists and reads it', async () => {
      const sc = await create({ name: 'nightly', vms: [vm.id], every: 'daily', at: '02:30', retention: { keepLast: 3, keepDaily: 7 } });
      expect(sc).toMatchObject({
        name: 'nightly',
        vms: [vm.id],
        target: 'default',
        every: 'daily',
        at: '02:30',
        retention: { keepLast: 3, keepDaily: 7 },
        enabled: true,
        lastRunAt: null,
        lastTask: null,
        lastStatus: null,
      });
      // The next 02:30 of the server's local time, within a day.
      const next = new Date(sc.nextRunAt!);
      expect([next.getHours(), next.getMinutes()]).toEqual([2, 30]);
      expect(next.getTime() - Date.now()).toBeGreaterThan(0);
      expect(next.getTime() - Date.now()).toBeLessThanOrEqual(24 * 3_600_000);

      const list = await s.api('GET', '/backup-schedules');
      expect(list.status).toBe(200);
      expectShape(BackupScheduleListEnvelope, list.body);
      expect((list.body as BackupScheduleListEnvelope).schedules.map((x) => x.name)).toContain('nightly');
      const one = await s.api('GET', `/backup-schedules/${sc.id}`);
      expect(one.status).toBe(200);
      expectShape(BackupScheduleEnvelope, one.body);
      expect(one.body.schedule).toEqual(sc);

      // every hourly with the minute, all VMs, a cron expression; disabled: no next run.
      const h = await create({ name: 'hourly-all', vms: 'all', every: 'hourly', at: '15', retention: { keepHourly: 24 } });
      expect(new Date(h.nextRunAt!).getMinutes()).toBe(15);
      const c = await create({ name: 'cron-off', vms: 'all', every: '*/30 1-5 * * 1-5', retention: { keepWeekly: 4 }, enabled: false });
      expect(c).toMatchObject({ at: null, enabled: false, nextRunAt: null });
    });

    it('bad bodies are refused with nothing made', async () => {
      const before = (await s.api('GET', '/backup-schedules')).body.schedules.length as number;
      const base = { name: 'bad', vms: [vm.id], every: 'daily', retention: { keepLast: 1 } };
      expectError(await s.api('POST', '/backup-schedules', { ...base, name: 'nightly' }), 'NAME_TAKEN', 409, 'A backup schedule named nightly already exists');
      expectError(await s.api('POST', '/backup-schedules', { ...base, vms: [vm.id, 'no-such-vm'] }), 'VM_NOT_FOUND', 404, 'VM not found: no-such-vm');
      expectError(await s.api('POST', '/backup-schedules', { ...base, vms: [vm.id, vm.id] }), 'VALIDATION', 400, `vms: VM ${vm.id} is listed twice`);
      expectError(await s.api('POST', '/backup-schedules', { ...base, vms: [] }), 'VALIDATION', 400, /^body\.vms /);
      expectError(await s.api('POST', '/backup-schedules', { ...base, target: 'offsite' }), 'TARGET_NOT_FOUND', 404, 'Backup target not found: offsite');
      expectError(await s.api('POST', '/backup-schedules', { ...base, every: 'monthly' }), 'VALIDATION', 400, /^every must be hourly, daily, weekly or a cron expression of 5 fields/);
      expectError(await s.api('POST', '/backup-schedules', { ...base, every: '0 0 2 * * *' }), 'VALIDATION', 400, /cron expression of 5 fields/);
      expectError(await s.api('POST', '/backup-schedules', { ...base, every: '0 25 * * *' }), 'VALIDATION', 400, 'every: "0 25 * * *" is not a valid cron expression: Invalid value for hour: 25');
      expectError(await s.api('POST', '/backup-schedules', { ...base, every: '0 0 30 2 *' }), 'VALIDATION', 400, 'every: "0 0 30 2 *" never runs (no date matches it)');
      expectError(await s.api('POST', '/backup-schedules', { ...base, at: '7:00' }), 'VALIDATION', 400, /^body\.at /);
      expectError(await s.api('POST', '/backup-schedules', { ...base, at: '30' }), 'VALIDATION', 400, '"at" of a daily schedule is HH:MM (e.g. 02:30), not "30"');
      expectError(await s.api('POST', '/backup-schedules', { ...base, every: 'hourly', at: '02:00' }), 'VALIDATION', 400, '"at" of an hourly schedule is the minute, MM (e.g. 15), not "02:00"');
      expectError(await s.api('POST', '/backup-schedules', { ...base, every: '0 3 * * *', at: '03:00' }), 'VALIDATION', 400, /^"at" goes with hourly, daily or weekly only/);
      expectError(await s.api('POST', '/backup-schedules', { ...base, retention: {} }), 'VALIDATION', 400, /^retention needs at least one rule/);
      expectError(await s.api('POST', '/backup-schedules', { ...base, retention: { keepLast: 0 } }), 'VALIDATION', 400, /^body\.retention\.keepLast /);
      expectError(await s.api('POST', '/backup-schedules', { ...base, retention: { keepYearly: 1 } }), 'VALIDATION', 400, 'body has an unknown field: keepYearly');
      expectError(await s.api('POST', '/backup-schedules', { ...base, name: 'no spaces allowed' }), 'VALIDATION', 400, /^body\.name /);
      expect((await s.api('GET', '/backup-schedules')).body.schedules).toHaveLength(before);
    });

    it('PATCH changes what it names (checked the same way), nothing on a refusal; DELETE removes; unknown ids are 404', async () => {
      const sc = await create({ name: 'to-change', vms: [vm.id], every: 'weekly', at: '04:00', retention: { keepWeekly: 2 } });
      const r = await s.api('PATCH', `/backup-schedules/${sc.id}`, { every: 'hourly', at: '45', retention: { keepLast: 5 }, name: 'changed' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expectShape(BackupScheduleEnvelope, r.body);
      expect(r.body.schedule).toMatchObject({ name: 'changed', every: 'hourly', at: '45', retention: { keepLast: 5 }, vms: [vm.id] });
      expect(new Date(r.body.schedule.nextRunAt).getMinutes()).toBe(45);
      const off = await s.api('PATCH', `/backup-schedules/${sc.id}`, { enabled: false });
      expect(off.body.schedule).toMatchObject({ enabled: false, nextRunAt: null });

      const unchanged = (await s.api('GET', `/backup-schedules/${sc.id}`)).body.schedule as BackupSchedule;
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { name: 'nightly' }), 'NAME_TAKEN', 409, 'A backup schedule named nightly already exists');
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { every: 'daily' }), 'VALIDATION', 400, '"at" of a daily schedule is HH:MM (e.g. 02:30), not "45"');
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { vms: ['gone'] }), 'VM_NOT_FOUND', 404, 'VM not found: gone');
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { target: 'offsite' }), 'TARGET_NOT_FOUND', 404, 'Backup target not found: offsite');
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { retention: {} }), 'VALIDATION', 400, /^retention needs at least one rule/);
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, {}), 'VALIDATION', 400, /^body must NOT have fewer than 1 properties/);
      expect((await s.api('GET', `/backup-schedules/${sc.id}`)).body.schedule).toEqual(unchanged);
      // Renaming to its own name is no clash.
      expect((await s.api('PATCH', `/backup-schedules/${sc.id}`, { name: 'changed' })).status).toBe(200);

      const del = await s.api('DELETE', `/backup-schedules/${sc.id}`);
      expect(del.status).toBe(200);
      expectShape(MessageBody, del.body);
      expectError(await s.api('GET', `/backup-schedules/${sc.id}`), 'SCHEDULE_NOT_FOUND', 404, `Backup schedule not found: ${sc.id}`);
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { enabled: true }), 'SCHEDULE_NOT_FOUND', 404, `Backup schedule not found: ${sc.id}`);
      expectError(await s.api('DELETE', `/backup-schedules/${sc.id}`), 'SCHEDULE_NOT_FOUND', 404, `Backup schedule not found: ${sc.id}`);
      expectError(await s.api('POST', '/backup-schedules/nope/run'), 'SCHEDULE_NOT_FOUND', 404, 'Backup schedule not found: nope');
    });

    it('POST /run answers 202 with one backup.schedule task (no target) that goes VM by VM; a VM deleted since is skipped with a note', async () => {
      const gone = await makeVm('sched-gone');
      const sc = await create({ name: 'run-now', vms: [vm.id, gone.id], every: 'daily', retention: { keepLast: 2 } });
      expect((await s.api('DELETE', `/vms/${gone.id}`)).status).toBe(200);
      const r = await s.api('POST', `/backup-schedules/${sc.id}/run`);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expectShape(BackupTaskEnvelope, r.body);
      const task = (r.body as BackupTaskEnvelope).task;
      expect(task).toMatchObject({ kind: 'backup.schedule', target: { vm: null, disk: null } });
      await s.built.tasks.idle();
      const ended = (await s.api('GET', `/tasks/${task.id}`)).body.task as Task;
      expect(['succeeded', 'failed']).toContain(ended.status);
      const vms = (ended.result as { vms: Array<Record<string, unknown>> }).vms;
      expect(vms.map((v) => v.vm)).toEqual([vm.id, gone.id]);
      expect(vms[0]).toMatchObject({ vmName: 'sched-a' });
      expect(vms[1]).toMatchObject({ vmName: null, task: null, backup: null, error: null, note: 'Skipped: the VM no longer exists', pruned: [] });
      const after = (await s.api('GET', `/backup-schedules/${sc.id}`)).body.schedule as BackupSchedule;
      expect(after).toMatchObject({ lastTask: task.id, lastStatus: ended.status });
      expect(Date.parse(after.lastRunAt!)).toBeGreaterThanOrEqual(Date.parse(task.createdAt) - 1000);
    });
  });

  describe('backup schedule routes: scopes', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess({ env: { AUTH: 'required', ADMIN_PASSWORD: PASSWORD } });
    });
    afterAll(async () => {
      await s.close();
    });

    it('a read token lists and reads; making, changing, deleting and running need admin', async () => {
      const login = await s.api('POST', '/auth/login', { password: PASSWORD });
      const cookie = String(login.headers['set-cookie']).split(';')[0];
      const sc = (await s.api('POST', '/backup-schedules', { name: 'scoped', vms: 'all', every: 'daily', retention: { keepLast: 1 } }, { cookie })).body.schedule as BackupSchedule;
      const token = (await s.api('POST', '/tokens', { name: 'reader', scope: 'read' }, { cookie })).body.token as string;
      const read = { authorization: `Bearer ${token}` };
      expect((await s.api('GET', '/backup-schedules', undefined, read)).status).toBe(200);
      expect((await s.api('GET', `/backup-schedules/${sc.id}`, undefined, read)).status).toBe(200);
      const forbidden = 'This token has read scope; this needs admin';
      expectError(await s.api('POST', '/backup-schedules', { name: 'x', vms: 'all', every: 'daily', retention: { keepLast: 1 } }, read), 'FORBIDDEN', 403, forbidden);
      expectError(await s.api('PATCH', `/backup-schedules/${sc.id}`, { enabled: false }, read), 'FORBIDDEN', 403, forbidden);
      expectError(await s.api('DELETE', `/backup-schedules/${sc.id}`, undefined, read), 'FORBIDDEN', 403, forbidden);
      expectError(await s.api('POST', `/backup-schedules/${sc.id}/run`, undefined, read), 'FORBIDDEN', 403, forbidden);
      expect((await s.api('GET', `/backup-schedules/${sc.id}`, undefined, { cookie })).body.schedule).toMatchObject({ enabled: true, lastTask: null });
    });
  });

  describe('the backup scheduler (fake engine and delete, a set clock)', () => {
    let dir: string;
    let db: Db;
    let tasks: TaskService;
    let backups: BackupRepo;
    let repo: ScheduleRepo;
    let bus: EventBus;
    let events: ServerEvent[];
    let clock: Date;
    let scheduler: BackupScheduler;
    let schedules: BackupSchedules;
    let engine: FakeEngine;
    const vmsHere = new Map<string, string>(); // id → name

    /**
     * The engine: a backup row per backup (incremental on the newest of that VM in that target);
     * the delete: a chain-safe merge — a deleted backup's children take its parent (a full with
     * children makes them full: a full rewrite, counted).
     */
    class FakeEngine implements BackupRunner, BackupPruner {
      started: Array<{ vm: string; target: string | undefined; schedule: string | undefined }> = [];
      removed: string[] = [];
      fullRewrites: string[] = [];
      failVm = new Set<string>();
      refuseVm = new Set<string>();
      failDelete = new Set<string>();
      hold: Promise<void> | null = null;
      private n = 0;

      start(vmId: string, body: { target?: string }, opts?: { schedule?: string }): Task {
        if (this.refuseVm.has(vmId)) throw new AppError('VM_BUSY', `VM ${vmsHere.get(vmId)} is busy`);
        this.started.push({ vm: vmId, target: body.target, schedule: opts?.schedule });
        return tasks.start('backup.create', { vm: vmId }, async (ctx) => {
          if (this.hold) await this.hold;
          if (ctx.signal.aborted) throw new Error('Cancelled');
          if (this.failVm.has(vmId)) throw new AppError('QEMU_ERROR', 'No space left on the target');
          const target = body.target ?? 'default';
          const parent = backups.list({ vm: vmId, target })[0] ?? null;
          const id = `b${String(++this.n).padStart(2, '0')}-${crypto.randomUUID().slice(0, 8)}`;
          clock = new Date(clock.getTime() + 60_000); // each backup a minute after the one before
          backups.insert(record(id, vmId, target, parent?.id ?? null, clock.toISOString()));
          return { backup: id, kind: parent ? 'incremental' : 'full' };
        });
      }

      remove(backupId: string): Task {
        return tasks.start('backup.delete', {}, async () => {
          if (this.failDelete.has(backupId)) throw new AppError('IMAGE_UNREADABLE', `Backup ${backupId} cannot be read`);
          const p = backups.get(backupId)!;
          for (const c of backups.children(backupId)) {
            if (p.parent === null) this.fullRewrites.push(c.id);
            backups.update({ ...c, parent: p.parent, kind: p.parent === null ? 'full' : 'incremental' });
          }
          backups.delete(backupId);
          this.removed.push(backupId);
          return { id: backupId };
        });
      }
    }

    const record = (id: string, vm: string, target: string, parent: string | null, createdAt: string): BackupRecord => ({
      id,
      vm,
      vmName: vmsHere.get(vm) ?? 'gone',
      target,
      createdAt,
      kind: parent ? 'incremental' : 'full',
      parent,
      sizeBytes: 1,
      verifiedAt: null,
      state: 'ok',
      frozen: false,
      disks: [],
      dir: path.join(dir, 'backups', vm, id),
      manifest: {} as BackupManifest,
    });

    const build = (): void => {
      scheduler = new BackupScheduler({
        repo,
        tasks,
        runner: engine,
        pruner: engine,
        backups: (f) => backups.list(f),
        vm: (id) => (vmsHere.has(id) ? { id, name: vmsHere.get(id)! } : null),
        allVms: () => [...vmsHere].map(([id, name]) => ({ id, name })),
        bus,
        log: silent,
        timeZone: 'UTC',
        now: () => clock,
      });
      schedules = new BackupSchedules({
        repo,
        vmExists: (id) => vmsHere.has(id),
        resolveTarget: (name) => ({ name, path: '/nowhere' }),
        changed: () => scheduler.rearm(),
        runNow: (sc) => scheduler.run(sc),
        timeZone: 'UTC',
        now: () => clock,
      });
    };
    const ended = async (t: Task): Promise<Task> => tasks.wait(t.id);
    const chainOk = (vm: string): boolean => backups.list({ vm }).every((b) => (b.parent === null ? b.kind === 'full' : backups.get(b.parent) !== null));

    beforeEach(() => {
      dir = makeTempDir('qm-sched-');
      db = openDb(path.join(dir, 'db.sqlite'));
      bus = new EventBus();
      events = [];
      bus.subscribe((e) => events.push(e));
      tasks = new TaskService(new TaskRepo(db), bus, silent);
      backups = new BackupRepo(db);
      repo = new ScheduleRepo(db);
      engine = new FakeEngine();
      clock = new Date('2024-03-06T10:30:00Z');
      vmsHere.clear();
      vmsHere.set('11111111-1111-4111-8111-111111111111', 'alpha');
      vmsHere.set('22222222-2222-4222-8222-222222222222', 'beta');
      vmsHere.set('33333333-3333-4333-8333-333333333333', 'gamma');
      build();
      scheduler.start();
    });
    afterEach(async () => {
      scheduler.stop();
      await tasks.idle();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const [A, B, C] = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];

    it('four runs with keepLast 2: two backups remain, the two newest, and their chain is whole', async () => {
      const sc = schedules.create({ name: 'four', vms: [A], every: 'daily', retention: { keepLast: 2 } });
      const pruned: string[][] = [];
      const made: string[] = [];
      for (let i = 0; i < 4; i++) {
        const t = await ended(schedules.run(sc.id));
        expect(t).toMatchObject({ kind: 'backup.schedule', status: 'succeeded' });
        const r = t.result as { vms: Array<{ vm: string; backup: string; kind: string; pruned: string[] }> };
        expect(r.vms).toHaveLength(1);
        expect(r.vms[0]).toMatchObject({ vm: A, vmName: 'alpha', error: null, kind: i === 0 ? 'full' : 'incremental' });
        pruned.push(r.vms[0].pruned);
        made.push(r.vms[0].backup);
      }
      expect(pruned.map((p) => p.length)).toEqual([0, 0, 1, 1]);
      const left = backups.list({ vm: A });
      expect(left).toHaveLength(2);
      expect(left.map((b) => b.id)).toEqual([made[3], made[2]]);
      expect(engine.removed).toEqual([made[0], made[1]]);
      expect(pruned.flat()).toEqual([made[0], made[1]]);
      expect(chainOk(A)).toBe(true);
      // The oldest left became full when its full parent went; the newest builds on it.
      expect(left.map((b) => b.kind)).toEqual(['incremental', 'full']);
      expect(left[0].parent).toBe(left[1].id);
      expect(engine.started.every((x) => x.schedule === sc.id && x.target === 'default')).toBe(true);
      expect(repo.get(sc.id)).toMatchObject({ lastStatus: 'succeeded' });
    });

    it('pruning several at once goes newest first: changes fold into the kept backup, one full rewrite, the chain stays whole', async () => {
      const sc = schedules.create({ name: 'many', vms: [A], every: 'daily', retention: { keepLast: 10 } });
      for (let i = 0; i < 4; i++) await ended(schedules.run(sc.id));
      const [b4, b3, b2, b1] = backups.list({ vm: A }).map((b) => b.id);
      schedules.update(sc.id, { retention: { keepLast: 2 } });
      const t = await ended(schedules.run(sc.id));
      const b5 = (t.result as { vms: Array<{ backup: string; pruned: string[] }> }).vms[0];
      // Kept: b5 and b4; pruned newest first: b3 (merged into b4), b2 (into b4), then the full b1 (b4 becomes full).
      expect(b5.pruned).toEqual([b3, b2, b1]);
      expect(engine.fullRewrites).toEqual([b4]);
      expect(backups.list({ vm: A }).map((b) => [b.id, b.kind, b.parent])).toEqual([
        [b5.backup, 'incremental', b4],
        [b4, 'full', null],
      ]);
      expect(chainOk(A)).toBe(true);
    });

    it('a failed VM does not stop the others; the run fails listing each VM; the failure is an event with the schedule', async () => {
      const sc = schedules.create({ name: 'three', vms: [A, B, C], every: 'daily', retention: { keepLast: 1 } });
      await ended(schedules.run(sc.id)); // one backup each
      engine.failVm.add(B);
      engine.refuseVm.add(C);
      events.length = 0;
      const t = await ended(schedules.run(sc.id));
      expect(t.status).toBe('failed');
      expect(t.error).toBe('2 of 3 VM backups of schedule three failed: beta: No space left on the target; gamma: VM gamma is busy');
      const r = t.result as { schedule: string; target: string; vms: Array<Record<string, unknown>> };
      expect(r).toMatchObject({ schedule: sc.id, target: 'default' });
      expect(r.vms[0]).toMatchObject({ vm: A, error: null, pruned: [expect.any(String)] });
      expect(r.vms[1]).toMatchObject({ vm: B, backup: null, error: 'No space left on the target', pruned: [], task: expect.any(String) });
      expect(r.vms[2]).toMatchObject({ vm: C, backup: null, task: null, error: 'VM gamma is busy', pruned: [] });
      // A failing VM keeps what it had: nothing of B or C was pruned.
      expect(backups.list({ vm: B })).toHaveLength(1);
      expect(backups.list({ vm: C })).toHaveLength(1);
      expect(backups.list({ vm: A })).toHaveLength(1);
      // The engine tells of its own failed task; a refusal before any task is told by the run.
      expect(events.filter((e) => e.type === 'backup.failed')).toEqual([{ type: 'backup.failed', vm: C, vmName: 'gamma', task: t.id, error: 'VM gamma is busy', schedule: sc.id }]);
      expect(repo.get(sc.id)).toMatchObject({ lastStatus: 'failed', lastTask: t.id });

      // A delete that fails stops this VM's pruning and fails the run; the backup stays.
      engine.failVm.clear();
      engine.refuseVm.clear();
      const old = backups.list({ vm: A })[0].id;
      engine.failDelete.add(old);
      const t2 = await ended(schedules.run(sc.id));
      expect(t2.status).toBe('failed');
      expect((t2.result as { vms: Array<Record<string, unknown>> }).vms[0]).toMatchObject({ vm: A, error: `Pruning backup ${old} failed: Backup ${old} cannot be read`, pruned: [] });
      expect(backups.get(old)).not.toBeNull();
    });

    it('the clock: due times run once; a restart runs nothing twice, and a schedule missed while down runs once', async () => {
      const sc = schedules.create({ name: 'hourly', vms: 'all', every: 'hourly', retention: { keepLast: 100 } }); // made at 10:30
      expect(schedules.get(sc.id).nextRunAt).toBe('2024-03-06T11:00:00.000Z');
      clock = new Date('2024-03-06T10:59:59Z');
      expect(scheduler.tick()).toEqual([]);
      clock = new Date('2024-03-06T11:00:00.200Z');
      const [t] = scheduler.tick();
      expect(t).toMatchObject({ kind: 'backup.schedule' });
      expect(scheduler.tick()).toEqual([]); // running: not again
      await ended(t);
      clock = new Date('2024-03-06T11:00:30Z');
      expect(scheduler.tick()).toEqual([]); // 11:00 ran
      expect(engine.started.map((x) => x.vm)).toEqual([A, B, C]); // "all": every VM, in order
      const ranAt = repo.get(sc.id)!.lastRunAt;

      // A restart at 11:30: nothing is due.
      scheduler.stop();
      clock = new Date('2024-03-06T11:30:00Z');
      build();
      scheduler.start();
      expect(engine.started).toHaveLength(3);
      expect(repo.get(sc.id)!.lastRunAt).toBe(ranAt);

      // Down from 11:30 to 14:10 (12:00, 13:00 and 14:00 missed): one run at start, then none until 15:00.
      scheduler.stop();
      clock = new Date('2024-03-06T14:10:00Z');
      build();
      scheduler.start();
      await tasks.idle();
      expect(engine.started).toHaveLength(6);
      expect(scheduler.tick()).toEqual([]);
      expect(schedules.get(sc.id).nextRunAt).toBe('2024-03-06T15:00:00.000Z');
    });

    it('a run cut short by a crash is failed at restart and not run again; its backup task was interrupted', async () => {
      const sc = schedules.create({ name: 'crash', vms: [A], every: 'hourly', retention: { keepLast: 1 } });
      let release!: () => void;
      engine.hold = new Promise<void>((r) => (release = r));
      const run = schedules.run(sc.id);
      await new Promise((r) => setImmediate(r));
      expect(repo.get(sc.id)).toMatchObject({ lastTask: run.id, lastStatus: null });
      // The crash: a new server on the same database (the old one's tasks never end).
      scheduler.stop();
      const oldTasks = tasks;
      tasks = new TaskService(new TaskRepo(db), bus, silent);
      expect(tasks.recover()).toBe(2); // the run and its backup
      build();
      scheduler.start();
      expect(repo.get(sc.id)).toMatchObject({ lastTask: run.id, lastStatus: 'failed' });
      expect(tasks.get(run.id)).toMatchObject({ status: 'failed', error: 'Interrupted by a server restart' });
      expect(engine.started).toHaveLength(1); // not run again at start
      // (let the old process's work end, so the test leaves nothing running)
      scheduler.stop();
      release();
      await oldTasks.idle();
    });

    it('more runs at once than task slots: runs take no slot, so their backups never wait behind them', async () => {
      const ids = ['s1', 's2', 's3', 's4', 's5', 's6'].map((n) => schedules.create({ name: n, vms: [A], every: 'daily', retention: { keepLast: 100 } }).id);
      const runs = ids.map((id) => schedules.run(id));
      const done = await Promise.all(runs.map((t) => ended(t)));
      expect(done.map((t) => t.status)).toEqual(Array(6).fill('succeeded'));
      expect(backups.list({ vm: A })).toHaveLength(6);
    });

    it('a change of timing counts due times from then on; /run while a run goes on answers that run; a cancel cancels its backup', async () => {
      const sc = schedules.create({ name: 'retime', vms: [A, B], every: 'daily', at: '09:00', retention: { keepLast: 1 } });
      clock = new Date('2024-03-06T10:35:00Z');
      schedules.update(sc.id, { at: '10:00' }); // 10:00 today has passed before the change: it does not fire
      expect(scheduler.tick()).toEqual([]);
      expect(schedules.get(sc.id).nextRunAt).toBe('2024-03-07T10:00:00.000Z');

      let release!: () => void;
      engine.hold = new Promise<void>((r) => (release = r));
      const first = schedules.run(sc.id);
      expect(schedules.run(sc.id).id).toBe(first.id);
      await new Promise((r) => setImmediate(r));
      const cancelling = tasks.cancel(first.id);
      release();
      expect((await cancelling).status).toBe('cancelled');
      await tasks.idle();
      // The backup the run had started was cancelled with it; the next VM was never started.
      expect(engine.started.map((x) => x.vm)).toEqual([A]);
      expect(tasks.list({ vm: A }).find((x) => x.kind === 'backup.create')).toMatchObject({ status: 'cancelled' });
      expect(repo.get(sc.id)).toMatchObject({ lastStatus: 'failed', lastTask: first.id });
    });
  });
}
