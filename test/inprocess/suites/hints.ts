/**
 * The stuck-boot hint (issue 14) over the fake runtime, sampling rounds run by hand: a VM with
 * nothing to boot gets no-boot-device (without a screendump), a bootable one whose screen stays
 * the same with an idle CPU gets idle-screen, a busy one none; each change bumps the cached list
 * and sends vm.updated; a guest reset and a stop clear it.
 */
import type { ServerEvent, Vm, VmEnvelope } from '@qemu-manager/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';

// the timer is set to an hour: rounds run by hand; frames HINT_IDLE_MS / 2 = 100 ms apart
const env = { METRICS_INTERVAL_MS: '3600000', HINT_IDLE_MS: '200' };
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function hintSuite(): void {
  describe('stuck-boot hint (issue 14)', () => {
    let s: InProcessServer;
    let empty: string;
    let idle: string;
    let busy: string;
    const events: ServerEvent[] = [];
    let cpu = 0;

    const hintOf = async (id: string) => ((await s.api('GET', '/vms')).body.vms as Vm[]).find((v) => v.id === id)!.hint;
    const updates = (id: string) => events.flatMap((e) => (e.type === 'vm.updated' && e.vm.id === id ? [e.vm.hint?.kind ?? null] : []));
    const shots = (id: string) => s.runtime.calls.filter((c) => c.method === 'screenshot' && c.arg === id).length;
    /** A round 150 ms after the last: the busy VM used 1 s of CPU, the others none; then the screendumps it asked for settle. */
    const round = async () => {
      cpu += 1;
      for (const id of [empty, idle]) s.runtime.counters.set(id, { cpuSeconds: 1, rssBytes: 1 << 20, disks: [] });
      s.runtime.counters.set(busy, { cpuSeconds: cpu, rssBytes: 1 << 20, disks: [] });
      await pause(150);
      await s.built.metrics!.tick();
      await pause(20);
    };
    const create = async (name: string, bootOrder?: string[]) =>
      ((await s.api('POST', '/vms', { name, cpus: 1, memory: 64, ...(bootOrder ? { bootOrder } : {}) })).body as VmEnvelope).vm.id;

    beforeAll(async () => {
      s = await startInProcess({ env });
      s.built.bus!.subscribe((e) => events.push(e));
      empty = await create('h-empty');
      idle = await create('h-idle', ['network', 'disk']); // network boot: something the firmware may boot
      busy = await create('h-busy', ['network']);
      for (const id of [empty, idle, busy]) expect((await s.api('POST', `/vms/${id}/start`)).status).toBe(200);
      events.length = 0; // from here on: what the hint changes send
    });
    afterAll(async () => {
      await s.close();
    });

    it('null before any sampling round', async () => {
      expect(await hintOf(empty)).toBeNull();
      expect(((await s.api('GET', `/vms/${idle}`)).body as VmEnvelope).vm.hint).toBeNull();
    });

    it('no-boot-device with nothing to boot; idle-screen once equal frames are HINT_IDLE_MS apart; none while busy', async () => {
      await round(); // first sample: no CPU figure yet
      await round(); // idle from here: the first frame
      expect(await hintOf(idle)).toBeNull(); // one frame does not say the screen stays the same
      await round(); // 340 ms since the first round: past the grace period (HINT_IDLE_MS)
      expect(await hintOf(empty)).toMatchObject({ kind: 'no-boot-device' });
      await round();
      const h = await hintOf(idle);
      expect(h).toMatchObject({ kind: 'idle-screen' });
      expect(Date.parse(h!.since)).toBeLessThan(Date.now());
      expect(((await s.api('GET', `/vms/${idle}`)).body as VmEnvelope).vm.hint).toEqual(h);
      expect(await hintOf(busy)).toBeNull();
      expect(updates(empty)).toEqual(['no-boot-device']);
      expect(updates(idle)).toEqual(['idle-screen']);
      expect(updates(busy)).toEqual([]);
      expect(shots(idle)).toBeGreaterThan(0);
      expect(shots(empty)).toBe(0); // no screendump for a VM with nothing to boot
      expect(shots(busy)).toBe(0); // nor for a busy one
    });

    it('a guest reset and a stop clear the hint, each with vm.updated', async () => {
      expect((await s.api('POST', `/vms/${empty}/reset`)).status).toBe(200);
      expect(await hintOf(empty)).toBeNull();
      await round();
      await round();
      await round();
      expect(await hintOf(empty)).toMatchObject({ kind: 'no-boot-device' });
      expect((await s.api('POST', `/vms/${empty}/stop`)).status).toBe(200);
      await round();
      expect(await hintOf(empty)).toBeNull();
      expect(updates(empty).filter((k, i, a) => i === 0 || k !== a[i - 1])).toEqual(['no-boot-device', null, 'no-boot-device', null]);
    });
  });
}
