/** Tasks: disk creation as a task, listing, one task, cancel, and a restart after a crash. */
import { CreatedDiskEnvelope, TaskEnvelope, TaskListEnvelope, type DiskEnvelope, type Task } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../../../packages/server/src/store/sqlite.js';
import { TaskRepo } from '../../../packages/server/src/tasks/repo.js';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function taskSuite(): void {
  describe('task routes', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('a disk creation answers { disk, task }; the task is listed, filtered by disk, and ends succeeded', async () => {
      const r = await s.api('POST', '/disks', { name: 'tasked', size: 1, format: 'qcow2' });
      expect(r.status).toBe(201);
      expectShape(CreatedDiskEnvelope, r.body);
      const { disk, task } = r.body as { disk: DiskEnvelope['disk']; task: Task };
      expect(task).toMatchObject({ kind: 'disk.create', target: { disk: disk.id, vm: null } });
      await s.built.tasks.idle();
      const one = await s.api('GET', `/tasks/${task.id}`);
      expect(one.status).toBe(200);
      expectShape(TaskEnvelope, one.body);
      expect((one.body as TaskEnvelope).task).toMatchObject({ status: 'succeeded', progress: 1, error: null, result: { disk: disk.id } });
      const all = await s.api('GET', '/tasks');
      expectShape(TaskListEnvelope, all.body);
      expect((all.body as TaskListEnvelope).tasks.map((t) => t.id)).toContain(task.id);
      const byDisk = await s.api('GET', `/tasks?disk=${disk.id}`);
      expect((byDisk.body as TaskListEnvelope).tasks.map((t) => t.id)).toEqual([task.id]);
      expect((await s.api('GET', '/tasks?vm=nothing')).body).toEqual({ tasks: [] });
      expectError(await s.api('GET', '/tasks?limit=0'), 'VALIDATION', 400, /^querystring\.limit must match pattern/);
    });

    it('cancelling a creation stops it: task cancelled, disk error, no partial file; a second cancel is 409 TASK_FINISHED', async () => {
      const gate = s.images.hold('create');
      const r = await s.api('POST', '/disks', { name: 'halted', size: 1, format: 'raw' });
      const { disk, task } = r.body as { disk: DiskEnvelope['disk']; task: Task };
      await gate.reached;
      expect(fs.existsSync(`${disk.path}.part`)).toBe(true);
      expect(((await s.api('GET', `/tasks/${task.id}`)).body as TaskEnvelope).task.status).toBe('running');
      const cancelled = await s.api('DELETE', `/tasks/${task.id}`);
      expect(cancelled.status).toBe(200);
      expect((cancelled.body as TaskEnvelope).task).toMatchObject({ status: 'cancelled', error: 'Cancelled' });
      gate.release();
      expect(fs.existsSync(`${disk.path}.part`)).toBe(false);
      expect(fs.existsSync(disk.path)).toBe(false);
      const after = ((await s.api('GET', `/disks/${disk.id}`)).body as DiskEnvelope).disk;
      expect(after).toMatchObject({ status: 'error', error: 'the creation was cancelled' });
      expectError(await s.api('DELETE', `/tasks/${task.id}`), 'TASK_FINISHED', 409, `Task ${task.id} has already ended (cancelled)`);
    });

    it('unknown task ids of any form are 404 TASK_NOT_FOUND', async () => {
      expectError(await s.api('GET', '/tasks/xyz'), 'TASK_NOT_FOUND', 404, 'Task not found: xyz');
      expectError(await s.api('DELETE', '/tasks/6f1c1b2e-0d7e-4b8a-9b0a-3d2f1e0c9a77'), 'TASK_NOT_FOUND', 404, 'Task not found: 6f1c1b2e-0d7e-4b8a-9b0a-3d2f1e0c9a77');
    });
  });

  describe('tasks after a crash', () => {
    it('a task left running is failed "interrupted" at the next start, and the file it was writing is gone', async () => {
      const dataDir = makeTempDir();
      const first = await startInProcess({ dataDir, keepDir: true });
      await first.close();
      // What a crash mid-task leaves: the row still running, its partial file on disk.
      const part = path.join(dataDir, 'disks', 'clone.qcow2.part');
      fs.writeFileSync(part, 'half a clone');
      const db = openDb(path.join(dataDir, 'db.sqlite'));
      const repo = new TaskRepo(db);
      repo.insert({ id: 'crashed', kind: 'disk.clone', vm: null, disk: null, bytesTotal: 100, createdAt: new Date().toISOString() });
      repo.start('crashed', new Date().toISOString());
      repo.setPartial('crashed', [part]);
      db.close();
      const second = await startInProcess({ dataDir });
      try {
        const t = (await second.api('GET', '/tasks/crashed')).body as TaskEnvelope;
        expect(t.task).toMatchObject({ status: 'failed', error: 'Interrupted by a server restart' });
        expect(fs.existsSync(part)).toBe(false);
      } finally {
        await second.close();
      }
    });
  });
}
