/**
 * Metrics (issue 14): one VM's history in a bounded ring of tiers, coarser with age. Each tier
 * averages the samples of its step into one point and keeps at most `span / step` points; a
 * sample counts in every tier, so the 24 h view never needs the fine points it outlived.
 */

export const FIELDS = ['cpuPercent', 'rssBytes', 'diskReadBps', 'diskWriteBps', 'diskReadOps', 'diskWriteOps', 'netRxBps', 'netTxBps'] as const;
export type Field = (typeof FIELDS)[number];
export type Sample = Record<Field, number | null>;

/** A point: the start of its interval (Unix seconds) and the averages of its samples (null: none measured). */
export interface Point {
  t: number;
  v: Sample;
}

export interface TierSpec {
  /** Seconds per point. */
  step: number;
  /** Seconds of history kept. */
  span: number;
}

/** 5 s for 15 min, 1 min for 6 h, 5 min for 24 h: 180 + 360 + 288 points a VM at most. */
export const TIERS: readonly TierSpec[] = [
  { step: 5, span: 15 * 60 },
  { step: 60, span: 6 * 3600 },
  { step: 300, span: 24 * 3600 },
];

interface Pending {
  t: number;
  sum: number[];
  n: number[];
}

function average(p: Pending): Sample {
  const v = {} as Sample;
  FIELDS.forEach((f, i) => (v[f] = p.n[i] ? p.sum[i]! / p.n[i] : null));
  return v;
}

class Tier {
  readonly points: Point[] = [];
  pending: Pending | null = null;
  constructor(readonly spec: TierSpec) {}

  get capacity(): number {
    return Math.ceil(this.spec.span / this.spec.step);
  }

  /** Adds a sample at `t` (seconds); returns the point it completed, if any. */
  add(t: number, s: Sample): Point | null {
    const bucket = Math.floor(t / this.spec.step) * this.spec.step;
    let done: Point | null = null;
    if (this.pending && bucket < this.pending.t) return null; // the clock went back: ignored
    if (this.pending && bucket !== this.pending.t) {
      done = { t: this.pending.t, v: average(this.pending) };
      this.push(done);
      this.pending = null;
    }
    this.pending ??= { t: bucket, sum: FIELDS.map(() => 0), n: FIELDS.map(() => 0) };
    FIELDS.forEach((f, i) => {
      const x = s[f];
      if (x !== null && Number.isFinite(x)) {
        this.pending!.sum[i]! += x;
        this.pending!.n[i]! += 1;
      }
    });
    return done;
  }

  push(p: Point): void {
    const last = this.points.at(-1);
    if (last && p.t <= last.t) return; // kept in order; a duplicate (a reload) is dropped
    this.points.push(p);
    const oldest = p.t - this.spec.span;
    let drop = 0;
    while (drop < this.points.length && this.points[drop]!.t <= oldest) drop++;
    drop = Math.max(drop, this.points.length - this.capacity);
    if (drop > 0) this.points.splice(0, drop);
  }

  /** The points from `from` (seconds) on, the interval in progress last. */
  since(from: number): Point[] {
    const out = this.points.filter((p) => p.t >= from);
    if (this.pending && this.pending.t >= from) out.push({ t: this.pending.t, v: average(this.pending) });
    return out;
  }
}

export class MetricsRing {
  private readonly tiers: Tier[];
  constructor(readonly specs: readonly TierSpec[] = TIERS) {
    this.tiers = specs.map((s) => new Tier(s));
  }

  /** Adds a sample taken at `t` (Unix seconds); returns the points it completed, with their tier. */
  add(t: number, s: Sample): Array<{ tier: number; point: Point }> {
    const out: Array<{ tier: number; point: Point }> = [];
    this.tiers.forEach((tier, i) => {
      const p = tier.add(t, s);
      if (p) out.push({ tier: i, point: p });
    });
    return out;
  }

  /** The intervals in progress, as points so far (written at shutdown so a restart keeps them). */
  pending(): Array<{ tier: number; point: Point }> {
    const out: Array<{ tier: number; point: Point }> = [];
    this.tiers.forEach((t, i) => {
      if (t.pending) out.push({ tier: i, point: { t: t.pending.t, v: average(t.pending) } });
    });
    return out;
  }

  /** Puts back a point read from storage (oldest first). */
  load(tier: number, p: Point): void {
    this.tiers[tier]?.push(p);
  }

  /** The finest tier whose span covers `seconds`, and its points of the last `seconds` before `now`. */
  range(seconds: number, now: number): { step: number; points: Point[] } {
    const tier = this.tiers.find((t) => t.spec.span >= seconds) ?? this.tiers.at(-1)!;
    return { step: tier.spec.step, points: tier.since(now - seconds) };
  }

  /** How many points the ring holds (bounded by the tiers' capacities plus one pending each). */
  get size(): number {
    return this.tiers.reduce((n, t) => n + t.points.length + (t.pending ? 1 : 0), 0);
  }

  static capacity(specs: readonly TierSpec[] = TIERS): number {
    return specs.reduce((n, s) => n + Math.ceil(s.span / s.step) + 1, 0);
  }
}
