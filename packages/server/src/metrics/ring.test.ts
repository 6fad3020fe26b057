import { describe, expect, it } from 'vitest';
import { FIELDS, MetricsRing, TIERS, type Sample } from './ring.js';

const sample = (cpu: number | null): Sample => {
  const s = {} as Sample;
  for (const f of FIELDS) s[f] = null;
  s.cpuPercent = cpu;
  return s;
};

describe('metrics ring (issue 14)', () => {
  it('averages the samples of each step into one point, per tier', () => {
    const r = new MetricsRing();
    // 12 samples 5 s apart from t=600 (one minute), cpu = 0, 10, ..., 110; then one in the next minute.
    for (let i = 0; i < 12; i++) r.add(600 + i * 5, sample(i * 10));
    const done = r.add(660, sample(0));
    expect(done.map((d) => d.tier)).toEqual([0, 1]); // the 5 s point of 655 and the minute 600..659
    expect(done.find((d) => d.tier === 1)!.point).toEqual({ t: 600, v: { ...sample(55) } });
    const fine = r.range(900, 660);
    expect(fine.step).toBe(5);
    expect(fine.points.map((p) => p.v.cpuPercent)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 0]);
    const hour = r.range(3600, 660);
    expect(hour.step).toBe(60);
    expect(hour.points.map((p) => [p.t, p.v.cpuPercent])).toEqual([[600, 55], [660, 0]]);
    expect(r.range(86400, 660).step).toBe(300);
  });

  it('stays bounded over days of samples and keeps only each tier\'s span', () => {
    const r = new MetricsRing();
    const start = 1_000_000;
    const end = start + 3 * 86400;
    for (let t = start; t <= end; t += 5) r.add(t, sample(1));
    expect(r.size).toBeLessThanOrEqual(MetricsRing.capacity());
    expect(MetricsRing.capacity()).toBe(180 + 360 + 288 + 3);
    const day = r.range(86400, end).points;
    expect(day[0].t).toBeGreaterThanOrEqual(end - 86400);
    expect(day.length).toBeGreaterThan(280);
    expect(r.range(900, end).points.length).toBeLessThanOrEqual(TIERS[0].span / TIERS[0].step + 1);
  });

  it('ignores unmeasured fields in the average and a clock that goes back', () => {
    const r = new MetricsRing();
    r.add(100, sample(null));
    r.add(101, sample(40));
    expect(r.add(50, sample(99))).toEqual([]);
    expect(r.range(900, 104).points.map((p) => p.v.cpuPercent)).toEqual([40]);
  });

  it('takes back stored points in order, dropping duplicates and points past the span', () => {
    const r = new MetricsRing();
    r.load(0, { t: 100, v: sample(1) });
    r.load(0, { t: 100, v: sample(2) });
    r.load(0, { t: 105, v: sample(3) });
    expect(r.range(900, 110).points.map((p) => p.v.cpuPercent)).toEqual([1, 3]);
    r.load(0, { t: 100 + 900 + 5, v: sample(4) }); // 100 and 105 are now older than 15 min
    expect(r.range(900, 1010).points.map((p) => p.t)).toEqual([1005]);
  });
});
