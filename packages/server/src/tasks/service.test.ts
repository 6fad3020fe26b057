import type { ServerEvent } from '@qemu-manager/contract';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import { openDb, type Db } from '../store/sqlite.js';
import { TaskRepo } from './repo.js';
import { TaskService } from './service.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;

let dir: string;
let db: Db;
let repo: TaskRepo;
let bus: EventBus;
let events: ServerEvent[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-tasks-'));
  db = openDb(path.join(dir, 'db.sqlite'));
  repo = new TaskRepo(db);
  bus = new EventBus();
  events = [];
  bus.subscribe((ev) => events.push(ev));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A promise and its resolver, for holding a task's work open. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('tasks', () => {
  it('runs a task to success with its progress and result, recorded and told', async () => {
    const tasks = new TaskService(repo, bus, silent);
    const g = gate();
    const t = tasks.start('disk.create', { disk: 'd1' }, async (ctx) => {
      ctx.progress(512, 1024);
      await g.wait;
      return { size: 1 };
    });
    expect(t).toMatchObject({ kind: 'disk.create', status: 'queued', target: { vm: null, disk: 'd1' } });
    await new Promise((r) => setTimeout(r, 20));
    expect(tasks.get(t.id)).toMatchObject({ status: 'running', progress: 0.5, bytesDone: 512, bytesTotal: 1024 });
    g.open();
    await tasks.idle();
    const done = tasks.get(t.id);
    expect(done).toMatchObject({ status: 'succeeded', progress: 1, error: null, result: { size: 1 } });
    expect(done.endedAt).not.toBeNull();
    expect(events.map((e) => e.type)).toContain('task.created');
    expect(events.filter((e) => e.type === 'task.updated').at(-1)).toMatchObject({ task: { status: 'succeeded' } });
  });

  it('throttles task.updated to at most one per 250 ms, and still sends the last state', async () => {
    const tasks = new TaskService(repo, bus, silent);
    const t = tasks.start('disk.clone', {}, async (ctx) => {
      for (let i = 1; i <= 200; i++) {
        ctx.progress(i, 200);
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 10));
      }
      return null;
    });
    await tasks.idle();
    const updates = events.filter((e) => e.type === 'task.updated' && e.task.id === t.id);
    // 200 progress reports in ~100 ms: the running and the final status plus at most a few throttled ones.
    expect(updates.length).toBeLessThan(10);
    expect(updates.at(-1)).toMatchObject({ task: { status: 'succeeded', bytesDone: 200 } });
  });

  it('a failure says why and removes the files the task was writing', async () => {
    const tasks = new TaskService(repo, bus, silent);
    const part = path.join(dir, 'x.part');
    const t = tasks.start('disk.clone', {}, async (ctx) => {
      ctx.partial(part);
      fs.writeFileSync(part, 'half');
      throw new AppError('IMAGE_UNREADABLE', 'the source image cannot be read');
    });
    await tasks.idle();
    expect(tasks.get(t.id)).toMatchObject({ status: 'failed', error: 'the source image cannot be read' });
    expect(fs.existsSync(part)).toBe(false);
  });

  it('a file the task kept (renamed to its real name) is not removed', async () => {
    const tasks = new TaskService(repo, bus, silent);
    const part = path.join(dir, 'y.part');
    tasks.start('disk.clone', {}, async (ctx) => {
      ctx.partial(part);
      fs.writeFileSync(part, 'whole');
      ctx.kept(part);
      throw new Error('later step failed');
    });
    await tasks.idle();
    expect(fs.existsSync(part)).toBe(true);
  });

  it('cancel stops a running task (its work sees the signal) and a queued one before it starts', async () => {
    const tasks = new TaskService(repo, bus, silent, { concurrency: 1 });
    const part = path.join(dir, 'z.part');
    let sawAbort = false;
    const running = tasks.start('disk.import', {}, (ctx) => {
      ctx.partial(part);
      fs.writeFileSync(part, '...');
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          sawAbort = true;
          reject(new Error('killed'));
        });
      });
    });
    let ranQueued = false;
    const queued = tasks.start('disk.import', {}, async () => {
      ranQueued = true;
      return null;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(tasks.get(queued.id).status).toBe('queued');
    expect(await tasks.cancel(queued.id)).toMatchObject({ status: 'cancelled' });
    expect(await tasks.cancel(running.id)).toMatchObject({ status: 'cancelled', error: 'Cancelled' });
    expect(sawAbort).toBe(true);
    expect(fs.existsSync(part)).toBe(false);
    await tasks.idle();
    expect(ranQueued).toBe(false);
    await expect(tasks.cancel(running.id)).rejects.toMatchObject({ code: 'TASK_FINISHED' });
    await expect(tasks.cancel('nope')).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
  });

  it('after a crash, a task that was running is failed "interrupted" and its partial file removed', () => {
    const part = path.join(dir, 'crash.part');
    fs.writeFileSync(part, 'half');
    repo.insert({ id: 't1', kind: 'disk.clone', vm: null, disk: null, bytesTotal: null, createdAt: new Date().toISOString() });
    repo.start('t1', new Date().toISOString());
    repo.setPartial('t1', [part]);
    const tasks = new TaskService(repo, bus, silent);
    expect(tasks.recover()).toBe(1);
    expect(tasks.get('t1')).toMatchObject({ status: 'failed', error: 'Interrupted by a server restart' });
    expect(fs.existsSync(part)).toBe(false);
    expect(tasks.recover()).toBe(0);
  });

  it('names the task working on a disk or VM while it runs, and none after', async () => {
    const tasks = new TaskService(repo, bus, silent);
    const g = gate();
    const t = tasks.start('disk.resize', { disk: 'd9', vm: 'v9' }, async () => {
      await g.wait;
      return null;
    });
    expect(tasks.activeFor({ disk: 'd9' })?.id).toBe(t.id);
    expect(tasks.activeFor({ vm: 'v9' })?.id).toBe(t.id);
    expect(tasks.activeFor({ disk: 'other' })).toBeNull();
    g.open();
    await tasks.idle();
    expect(tasks.activeFor({ disk: 'd9' })).toBeNull();
  });

  it('lists newest first, by VM or disk', async () => {
    const tasks = new TaskService(repo, bus, silent);
    const a = tasks.start('vm.snapshot', { vm: 'v1' }, async () => null);
    const b = tasks.start('disk.resize', { disk: 'd1' }, async () => null);
    const c = tasks.start('vm.clone', { vm: 'v1' }, async () => null);
    await tasks.idle();
    expect(tasks.list({}).map((t) => t.id)).toEqual([c.id, b.id, a.id]);
    expect(tasks.list({ vm: 'v1' }).map((t) => t.id)).toEqual([c.id, a.id]);
    expect(tasks.list({ disk: 'd1' }).map((t) => t.id)).toEqual([b.id]);
    expect(tasks.list({ limit: '1' })).toHaveLength(1);
  });
});
