/**
 * Backup schedules on the real server process and its SQLite file: a schedule whose due time
 * passed while the server was down runs once at the next start, and a further restart does not
 * run it again. (The backups a run makes need the backup engine: the retention test with real
 * qemu-img is below, to be enabled once the engine, the delete and the restore are on main.)
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, waitFor } from './harness.js';

let server: TestServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeDataDir();
  server = await new TestServer(dataDir).start();
});
afterAll(async () => {
  await server?.dispose();
});

const scheduleRuns = async (): Promise<Array<{ id: string; status: string }>> =>
  ((await server.api('GET', '/tasks?limit=1000')).body.tasks as Array<{ id: string; kind: string; status: string }>).filter((t) => t.kind === 'backup.schedule');

describe('backup schedules across restarts', () => {
  it('a due time missed while the server was down runs once at start; the next restart runs nothing', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'sched-int', cpus: 1, memory: 64 })).body.vm;
    const made = await server.api('POST', '/backup-schedules', { name: 'nightly', vms: [vm.id], every: 'daily', at: '03:00', retention: { keepLast: 2 } });
    expect(made.status).toBe(201);
    const id = made.body.schedule.id as string;
    expect(await scheduleRuns()).toEqual([]);

    // Down for two days: the schedule last ran (and was armed) before yesterday's 03:00.
    await server.kill('SIGTERM');
    const db = new Database(path.join(dataDir, 'db.sqlite'));
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
    db.prepare('UPDATE backup_schedules SET armed_at = ?, last_run_at = ? WHERE id = ?').run(twoDaysAgo, twoDaysAgo, id);
    db.close();

    server = await new TestServer(dataDir).start();
    const runs = await waitFor(async () => {
      const r = await scheduleRuns();
      return r.length === 1 && r[0].status !== 'queued' && r[0].status !== 'running' ? r : null;
    }, 30_000, 'the missed run to end');
    const sc = (await server.api('GET', `/backup-schedules/${id}`)).body.schedule;
    expect(sc.lastTask).toBe(runs[0].id);
    expect(Date.parse(sc.lastRunAt)).toBeGreaterThan(Date.parse(twoDaysAgo));
    expect(sc.lastStatus).toBe(runs[0].status);
    const task = (await server.api('GET', `/tasks/${runs[0].id}`)).body.task;
    expect(task.result.vms.map((v: { vm: string }) => v.vm)).toEqual([vm.id]);

    // A crash and a start again: the due time ran already; nothing runs, the next one is ahead.
    await server.kill('SIGKILL');
    server = await new TestServer(dataDir).start();
    expect((await scheduleRuns()).map((t) => t.id)).toEqual([runs[0].id]);
    const again = (await server.api('GET', `/backup-schedules/${id}`)).body.schedule;
    expect(again.lastRunAt).toBe(sc.lastRunAt);
    expect(Date.parse(again.nextRunAt)).toBeGreaterThan(Date.now());
  });

  // Needs backups/service.ts (the engine), the backup delete and restore on main: the lead enables it.
  it.todo('retention with real qemu-img: 4 runs of a schedule with keepLast 2 leave 2 backups of the VM, and every remaining chain restores (qemu-img convert of each kept backup gives the disk content)');
});
