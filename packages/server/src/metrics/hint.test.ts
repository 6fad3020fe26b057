import { describe, expect, it } from 'vitest';
import { frameHash, hasBootMedium, HintService, HintTracker } from './hint.js';

const IDLE = 60_000;
const EVERY = 10_000;

/** Feeds a tracker one sample (and a frame when it asks for one) every 5 s from `from` to `to`. */
function run(t: HintTracker, from: number, to: number, cpu: number, screen: (at: number) => string, bootable = true): number {
  let frames = 0;
  for (let at = from; at <= to; at += 5000) {
    t.sample({ at, cpuPercent: cpu, bootable });
    if (t.wantsFrame(at)) {
      frames++;
      t.frameSeen(screen(at), at);
    }
  }
  return frames;
}

describe('stuck-boot hint tracker', () => {
  it('an idle CPU and an unchanged screen for idleMs give idle-screen, with the start of the idle window', () => {
    const t = new HintTracker(IDLE, 0, EVERY);
    run(t, 0, 20_000, 80, () => 'a'); // booting: busy
    expect(t.hint()).toBeNull();
    run(t, 25_000, 80_000, 1, () => 'menu');
    expect(t.hint()).toBeNull(); // idle for 55 s only
    run(t, 85_000, 90_000, 1, () => 'menu');
    expect(t.hint()).toEqual({ kind: 'idle-screen', since: 25_000 });
  });

  it('frames only while idle, at most one per frameEveryMs', () => {
    const t = new HintTracker(IDLE, 0, EVERY);
    expect(run(t, 0, 60_000, 50, () => 'x')).toBe(0); // busy: no screendump at all
    expect(run(t, 65_000, 125_000, 0.5, () => 'x')).toBe(7); // 61 s idle: every 10 s
  });

  it('a screen that changes, or a busy sample, starts the wait again', () => {
    const t = new HintTracker(IDLE, 0, EVERY);
    run(t, 0, 25_000, 1, () => 'a');
    run(t, 30_000, 50_000, 1, () => 'b');
    run(t, 55_000, 100_000, 1, () => 'c'); // a third screen at 60 s: it changed
    expect(t.hint()).toBeNull();
    run(t, 105_000, 125_000, 1, () => 'c');
    expect(t.hint()).toEqual({ kind: 'idle-screen', since: 60_000 });
    t.sample({ at: 130_000, cpuPercent: 40, bootable: true });
    expect(t.hint()).toBeNull();
    run(t, 135_000, 190_000, 1, () => 'c');
    expect(t.hint()).toBeNull(); // 55 s since the CPU went idle again
  });

  it('a blinking cursor (two frames taking turns) is an unchanged screen; a third frame is a change', () => {
    const t = new HintTracker(IDLE, 0, EVERY);
    run(t, 0, 70_000, 1, (at) => ((at / EVERY) % 2 ? 'cursor-on' : 'cursor-off'));
    expect(t.hint()).toEqual({ kind: 'idle-screen', since: 0 });
    t.sample({ at: 75_000, cpuPercent: 1, bootable: true });
    t.frameSeen('new text', 80_000);
    expect(t.hint()).toBeNull();
  });

  it('an unknown CPU figure changes nothing; 5 % is busy', () => {
    const t = new HintTracker(IDLE, 0, EVERY);
    run(t, 0, 70_000, 4.9, () => 'a');
    t.sample({ at: 75_000, cpuPercent: null, bootable: true });
    expect(t.hint()?.kind).toBe('idle-screen');
    t.sample({ at: 80_000, cpuPercent: 5, bootable: true });
    expect(t.hint()).toBeNull();
  });

  it('no boot medium: no-boot-device after the grace period since boot, without any screendump', () => {
    const t = new HintTracker(IDLE, 1000, EVERY);
    expect(run(t, 1000, 15_000, 1, () => 'a', false)).toBe(0);
    expect(t.hint()).toBeNull();
    run(t, 16_000, 16_000, 30, () => 'a', false);
    expect(t.hint()).toEqual({ kind: 'no-boot-device', since: 1000 });
    // a medium inserted: the hint goes; the screen is watched again
    t.sample({ at: 21_000, cpuPercent: 1, bootable: true });
    expect(t.hint()).toBeNull();
    expect(t.wantsFrame(21_000)).toBe(true);
  });

  it('the grace period is idleMs when that is shorter', () => {
    const t = new HintTracker(2000, 0, EVERY);
    t.sample({ at: 2000, cpuPercent: null, bootable: false });
    expect(t.hint()?.kind).toBe('no-boot-device');
  });

  it('boot media: a disk, a CD-ROM medium, the drivers CD or network boot', () => {
    const base = { disks: [], iso: null, driversIso: null, bootOrder: ['disk', 'cdrom'] };
    expect(hasBootMedium(base)).toBe(false);
    expect(hasBootMedium({ ...base, disks: [{}] })).toBe(true);
    expect(hasBootMedium({ ...base, iso: 'x.iso' })).toBe(true);
    expect(hasBootMedium({ ...base, driversIso: 'v.iso' })).toBe(true);
    expect(hasBootMedium({ ...base, bootOrder: ['network'] })).toBe(true);
  });
});

describe('hint service', () => {
  it('tells each change once, starts afresh for a new process and forgets a stopped VM', async () => {
    const changed: string[] = [];
    let frames = 0;
    const png = Buffer.from('frame');
    const svc = new HintService({
      idleMs: 10_000,
      frameEveryMs: 5000,
      frame: () => {
        frames++;
        return Promise.resolve(png);
      },
      bootable: (id) => (id === 'gone' ? null : id === 'empty' ? false : true),
      changed: (id) => changed.push(id),
    });
    const settle = () => new Promise((r) => setImmediate(r));
    for (let at = 0; at <= 20_000; at += 5000) {
      svc.sample('vm', 7, at, 1);
      svc.sample('empty', 8, at, 1);
      await settle();
    }
    expect(svc.get('vm')).toEqual({ kind: 'idle-screen', since: new Date(0).toISOString() });
    expect(svc.get('empty')).toEqual({ kind: 'no-boot-device', since: new Date(0).toISOString() });
    expect(changed.sort()).toEqual(['empty', 'vm']);
    expect(frames).toBeGreaterThanOrEqual(3);
    expect(frameHash(png)).toMatch(/^[0-9a-f]{64}$/);
    // another QEMU process: another boot
    svc.sample('vm', 9, 25_000, 1);
    expect(svc.get('vm')).toBeNull();
    expect(changed.filter((c) => c === 'vm')).toHaveLength(2);
    svc.stopped('empty');
    expect(svc.get('empty')).toBeNull();
    expect(changed.filter((c) => c === 'empty')).toHaveLength(2);
    svc.sample('gone', 1, 0, 1);
    expect(svc.get('gone')).toBeNull();
  });
});
