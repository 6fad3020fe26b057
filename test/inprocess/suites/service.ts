/**
 * Service and autostart (issue 15): the autostart setting, the autostart run after a host boot
 * (a fake boot id in a file; not after a mere restart), observed from the task list, and the host
 * shutdown of every VM in reverse autostart order, with the power-off of the rest at the timeout.
 */
import { TaskEnvelope, VmEnvelope, type Task, type TaskListEnvelope, type Vm } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const BOOT_A = '0b7a4c1e-1111-4a2b-9c3d-aaaaaaaaaaaa';
const BOOT_B = '0b7a4c1e-2222-4a2b-9c3d-bbbbbbbbbbbb';

async function makeVm(s: InProcessServer, name: string): Promise<Vm> {
  const r = await s.api('POST', '/vms', { name, cpus: 1, memory: 64 });
  expect(r.status).toBe(201);
  return (r.body as VmEnvelope).vm;
}

async function tasksOf(s: InProcessServer, kind: Task['kind']): Promise<Task[]> {
  return ((await s.api('GET', '/tasks?limit=1000')).body as TaskListEnvelope).tasks.filter((t) => t.kind === kind).reverse(); // oldest first
}

/** Waits until `n` tasks of `kind` have ended (the autostart runs in the background). */
async function ended(s: InProcessServer, kind: Task['kind'], n: number): Promise<Task[]> {
  for (let i = 0; i < 400; i++) {
    const list = await tasksOf(s, kind);
    if (list.length >= n && list.every((t) => t.endedAt !== null)) return list;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${n} ${kind} tasks did not end`);
}

export function serviceSuite(): void {
  describe('autostart (issue 15)', () => {
    // Made in beforeAll, not while the file is collected: a filtered run that skips this suite
    // runs no afterAll, and would leave the directory behind.
    let dir = '';
    let dataDir = '';
    let bootFile = '';
    const env: Record<string, string> = {};
    const ids: Record<string, string> = {};
    beforeAll(async () => {
      dir = makeTempDir('qm-autostart-');
      dataDir = path.join(dir, 'data');
      bootFile = path.join(dir, 'boot_id');
      env.BOOT_ID_FILE = bootFile;
      fs.mkdirSync(dataDir);
      fs.writeFileSync(bootFile, `${BOOT_A}\n`);
      const s = await startInProcess({ env, dataDir, keepDir: true });
      try {
        for (const n of ['alpha', 'bravo', 'charlie', 'delta']) ids[n] = (await makeVm(s, n)).id;
        const set = async (n: string, enabled: boolean, order: number, delayS: number) => {
          const r = await s.api('PUT', `/vms/${ids[n]}/autostart`, { enabled, order, delayS });
          expect(r.status).toBe(200);
          expectShape(VmEnvelope, r.body);
          expect((r.body as VmEnvelope).vm.autostart).toEqual({ enabled, order, delayS });
        };
        await set('alpha', true, 2, 0);
        await set('bravo', true, 1, 1); // first, then 1 s before the next
        await set('charlie', true, 3, 0);
        await set('delta', false, 0, 0);
      } finally {
        await s.close();
      }
    });
    afterAll(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a VM shows autostart off by default; a bad setting is a 400 and an unknown VM a 404, with nothing changed', async () => {
      const s = await startInProcess({ env });
      try {
        const vm = await makeVm(s, 'plain');
        expect(vm.autostart).toEqual({ enabled: false, order: 0, delayS: 0 });
        expectError(await s.api('PUT', `/vms/${vm.id}/autostart`, { enabled: true, order: 1 }), 'VALIDATION', 400, /delayS/);
        expectError(await s.api('PUT', `/vms/${vm.id}/autostart`, { enabled: true, order: -1, delayS: 0 }), 'VALIDATION', 400, /order/);
        expectError(await s.api('PUT', `/vms/${vm.id}/autostart`, { enabled: true, order: 1, delayS: 0, extra: 1 }), 'VALIDATION', 400, /unknown field/);
        expectError(await s.api('PUT', '/vms/nothing/autostart', { enabled: true, order: 1, delayS: 0 }), 'VM_NOT_FOUND', 404, /nothing/);
        expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.autostart).toEqual({ enabled: false, order: 0, delayS: 0 });
      } finally {
        await s.close();
      }
    });

    it('a server restart in the same host boot starts nothing', async () => {
      const s = await startInProcess({ env, dataDir, keepDir: true });
      try {
        await s.built.tasks.idle();
        expect(await tasksOf(s, 'vm.autostart')).toEqual([]);
        expect(((await s.api('GET', '/vms')).body as { vms: Vm[] }).vms.every((v) => v.status === 'stopped')).toBe(true);
      } finally {
        await s.close();
      }
    });

    it('after a host boot the autostart VMs start as tasks in order, the delay between them observed', async () => {
      fs.writeFileSync(bootFile, `${BOOT_B}\n`);
      const s = await startInProcess({ env, dataDir, keepDir: true });
      try {
        const list = await ended(s, 'vm.autostart', 3);
        expect(list.map((t) => t.target.vm)).toEqual([ids.bravo, ids.alpha, ids.charlie]);
        for (const t of list) {
          expectShape(TaskEnvelope, { task: t });
          expect(t).toMatchObject({ status: 'succeeded', result: { started: true } });
        }
        // bravo's delayS is 1: alpha's task starts at least 1 s after bravo's ended; alpha's is 0.
        const [b, a, c] = list as [Task, Task, Task];
        expect(Date.parse(a.createdAt) - Date.parse(b.endedAt!)).toBeGreaterThanOrEqual(1000);
        expect(Date.parse(c.createdAt)).toBeGreaterThanOrEqual(Date.parse(a.endedAt!));
        const vms = ((await s.api('GET', '/vms')).body as { vms: Vm[] }).vms;
        const status = Object.fromEntries(vms.map((v) => [v.name, v.status]));
        expect(status).toEqual({ alpha: 'running', bravo: 'running', charlie: 'running', delta: 'stopped' });
        expect(s.runtime.calls.filter((c) => c.method === 'start').map((c) => c.arg)).toEqual([ids.bravo, ids.alpha, ids.charlie]);
      } finally {
        await s.close();
      }
    });
  });

  describe('host shutdown-vms (issue 15)', () => {
    let s: InProcessServer;
    const ids: Record<string, string> = {};
    beforeAll(async () => {
      s = await startInProcess();
      for (const n of ['first', 'last', 'loose', 'idle']) ids[n] = (await makeVm(s, n)).id;
      await s.api('PUT', `/vms/${ids.first}/autostart`, { enabled: true, order: 1, delayS: 0 });
      await s.api('PUT', `/vms/${ids.last}/autostart`, { enabled: true, order: 5, delayS: 0 });
    });
    afterAll(async () => {
      await s.close();
    });

    async function startAll(names: string[]): Promise<void> {
      for (const n of names) expect((await s.api('POST', `/vms/${ids[n]}/start`)).status).toBe(200);
    }

    it('presses the power button in reverse autostart order (VMs without autostart first) and lists how each ended', async () => {
      await startAll(['first', 'last', 'loose']);
      const before = s.runtime.calls.length;
      const r = await s.api('POST', '/host/shutdown-vms', { timeout: 30 });
      expect(r.status).toBe(202);
      expectShape(TaskEnvelope, r.body);
      const task = await s.built.tasks.wait((r.body as TaskEnvelope).task.id);
      expect(task).toMatchObject({ kind: 'host.shutdown-vms', status: 'succeeded', target: { vm: null, disk: null } });
      const presses = s.runtime.calls.slice(before).filter((c) => c.method === 'powerdown').map((c) => c.arg);
      expect(presses).toEqual([ids.loose, ids.last, ids.first]);
      expect(s.runtime.count('stop')).toBe(0);
      expect(task.result).toEqual({
        timeoutS: 30,
        // in the order they went down, then the ones that were not running
        vms: [
          { vm: ids.loose, name: 'loose', outcome: 'shutdown' },
          { vm: ids.last, name: 'last', outcome: 'shutdown' },
          { vm: ids.first, name: 'first', outcome: 'shutdown' },
          { vm: ids.idle, name: 'idle', outcome: 'was-stopped' },
        ],
      });
      const vms = ((await s.api('GET', '/vms')).body as { vms: Vm[] }).vms;
      expect(vms.every((v) => v.status === 'stopped')).toBe(true);
    });

    it('a guest that ignores the button is powered off at the timeout; a second run meanwhile is a 409; bad bodies are 400s', async () => {
      await startAll(['loose']);
      s.runtime.powerdownEffect = 'ignore';
      try {
        expectError(await s.api('POST', '/host/shutdown-vms', { timeout: 0 }), 'VALIDATION', 400, /timeout/);
        expectError(await s.api('POST', '/host/shutdown-vms', { timeout: 1, force: true }), 'VALIDATION', 400, /unknown field/);
        const r = await s.api('POST', '/host/shutdown-vms', { timeout: 1 });
        expect(r.status).toBe(202);
        expectError(await s.api('POST', '/host/shutdown-vms'), 'VM_BUSY', 409, /already running/);
        const task = await s.built.tasks.wait((r.body as TaskEnvelope).task.id);
        expect(task.status).toBe('succeeded');
        expect((task.result as { vms: unknown[] }).vms).toContainEqual({ vm: ids.loose, name: 'loose', outcome: 'powered-off', error: expect.stringMatching(/did not power off/) });
        expect(((await s.api('GET', `/vms/${ids.loose}`)).body as VmEnvelope).vm.status).toBe('stopped');
        // With nothing running, a body-less request works too.
        const again = await s.api('POST', '/host/shutdown-vms');
        expect(again.status).toBe(202);
        expect((await s.built.tasks.wait((again.body as TaskEnvelope).task.id)).status).toBe('succeeded');
      } finally {
        s.runtime.powerdownEffect = 'exit';
      }
    });
  });
}
