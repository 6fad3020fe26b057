import type { HostMetrics, HostStorage, MetricsRange, MetricsSummary, VmMetrics } from '@qemu-manager/contract';
import fs from 'node:fs';
import os from 'node:os';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { decodePng, encodePng, PngError, scaleRgb, type Rgb } from '../lib/png.js';
import { readHostCpu, readMeminfo } from '../lib/procfs.js';
import type { VmRuntime, VmStats } from '../runtime/port.js';
import type { MetricsRepo } from './repo.js';
import { FIELDS, MetricsRing, TIERS, type Point, type Sample } from './ring.js';

/**
 * Metrics (issue 14): one timer samples every running VM (CPU and RSS of its process, disk and NIC
 * counters over the runtime port), keeps each VM's history in a bounded ring and writes the
 * completed points in one transaction a round; it also serves the host's figures, the
 * Prometheus snapshot and the screenshots (cached a few seconds).
 */

const RANGE_SECONDS: Record<MetricsRange, number> = { '15m': 900, '1h': 3600, '24h': 86400 };
/** How long a screenshot is served from the cache. */
const SCREENSHOT_TTL_MS = 3000;
/** The sparkline of the VM list: the last 15 minutes in 30 s points. */
const SUMMARY_STEP = 30;
const SUMMARY_POINTS = 30;
/** Storage is pruned every this many rounds. */
const PRUNE_EVERY = 60;

export interface VmCounters {
  at: number;
  cpuSeconds: number | null;
  rssBytes: number | null;
  diskReadBytes: number;
  diskWriteBytes: number;
  diskReadOps: number;
  diskWriteOps: number;
  netRxBytes: number | null;
  netTxBytes: number | null;
  cpuPercent: number | null;
  /** The guest's own view of its memory (balloon statistics), when it reports it. */
  guestMemory?: { totalBytes: number; availableBytes: number } | null;
  /** Per NIC whose backend counts. */
  nics?: Array<{ id: string; rxBytes: number; txBytes: number }>;
}

interface VmState {
  ring: MetricsRing;
  last: VmCounters | null;
}

export interface StorageLocation {
  kind: HostStorage['kind'];
  name: string;
  path: string;
}

export interface MetricsDeps {
  repo: MetricsRepo;
  runtime: VmRuntime;
  intervalMs: number;
  log: Logger;
  /** Storage roots and backup targets, asked at each call (targets change while the server runs). */
  storage: () => StorageLocation[];
  /** Throws VM_NOT_FOUND for an id that names no VM. */
  requireVm: (id: string) => void;
  now?: () => number;
  /** The stuck-boot hint (issue 14): each running VM's CPU of the round, and the VMs that do not run. */
  onSample?: (vmId: string, pid: number, at: number, cpuPercent: number | null) => void;
  onNotRunning?: (vmId: string) => void;
}

export interface PromVm {
  id: string;
  name: string;
  status: string;
  last: VmCounters | null;
}

export class MetricsService {
  private readonly vms = new Map<string, VmState>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private closed = false;
  private rounds = 0;
  private hostCpu: { busy: number; total: number } | null = null;
  private hostPercent: number | null = null;
  private readonly shots = new Map<string, { at: number; frame: Promise<{ raw: Buffer; img: Rgb }>; scaled: Map<number, Buffer> }>();
  private readonly now: () => number;

  constructor(private readonly deps: MetricsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Reads back the stored history and starts the timer. */
  start(): void {
    for (const { vmId, tier, point } of this.deps.repo.load()) this.state(vmId).ring.load(tier, point);
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  /** Stops the timer and writes the intervals in progress (a restart keeps them). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closed = true;
    const points: Array<{ vmId: string; tier: number; point: Point }> = [];
    for (const [vmId, s] of this.vms) for (const p of s.ring.pending()) points.push({ vmId, ...p });
    try {
      this.deps.repo.save(points);
    } catch (err) {
      this.deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'metrics: the last points could not be written');
    }
  }

  private state(vmId: string): VmState {
    let s = this.vms.get(vmId);
    if (!s) this.vms.set(vmId, (s = { ring: new MetricsRing(), last: null }));
    return s;
  }

  /** One round: every running VM sampled, the completed points written in one transaction. */
  async tick(): Promise<void> {
    if (this.running || this.closed) return; // a slow round is never overtaken by the next one
    this.running = true;
    try {
      await this.round();
    } catch (err) {
      this.deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'metrics round failed');
    } finally {
      this.running = false;
    }
  }

  private async round(): Promise<void> {
    const at = this.now();
    const host = readHostCpu();
    if (host && this.hostCpu && host.total > this.hostCpu.total) {
      this.hostPercent = (100 * (host.busy - this.hostCpu.busy)) / (host.total - this.hostCpu.total);
    }
    this.hostCpu = host;
    const list = this.deps.repo.vms();
    const known = new Set(list.map((v) => v.id));
    for (const id of this.vms.keys()) if (!known.has(id)) {
      this.vms.delete(id); // deleted VMs: their rows went with them
      this.deps.onNotRunning?.(id);
    }
    const completed: Array<{ vmId: string; tier: number; point: Point }> = [];
    await Promise.all(
      list.map(async (vm) => {
        const proc = this.deps.runtime.process(vm.id);
        if (!proc) {
          if (this.vms.get(vm.id)?.last) this.state(vm.id).last = null;
          this.deps.onNotRunning?.(vm.id);
          return;
        }
        const counters = await this.sample(vm.id, at);
        if (!counters) return;
        const s = this.state(vm.id);
        const sample = rates(s.last, counters);
        counters.cpuPercent = sample.cpuPercent;
        s.last = counters;
        this.deps.onSample?.(vm.id, proc.pid, at, sample.cpuPercent);
        for (const c of s.ring.add(Math.floor(at / 1000), sample)) completed.push({ vmId: vm.id, ...c });
      }),
    );
    if (this.closed) return; // the database closes with the server
    this.deps.repo.save(completed);
    if (++this.rounds % PRUNE_EVERY === 1) {
      TIERS.forEach((t, i) => this.deps.repo.prune(i, Math.floor(at / 1000) - t.span));
    }
  }

  private async sample(vmId: string, at: number): Promise<VmCounters | null> {
    const usage = this.deps.runtime.usage?.(vmId) ?? null;
    let stats: VmStats | null;
    try {
      stats = await this.deps.runtime.stats(vmId);
    } catch {
      stats = null; // QEMU busy or gone: this round has no disk counters for it
    }
    if (!usage && !stats) return null;
    const sum = (f: (d: VmStats['disks'][number]) => number) => (stats ? stats.disks.reduce((n, d) => n + f(d), 0) : 0);
    const nics = stats?.nics;
    return {
      at,
      cpuSeconds: usage?.cpuSeconds ?? null,
      rssBytes: usage?.rssBytes ?? null,
      diskReadBytes: sum((d) => d.readBytes),
      diskWriteBytes: sum((d) => d.writtenBytes),
      diskReadOps: sum((d) => d.readOps),
      diskWriteOps: sum((d) => d.writeOps),
      netRxBytes: nics?.length ? nics.reduce((n, x) => n + x.rxBytes, 0) : null,
      netTxBytes: nics?.length ? nics.reduce((n, x) => n + x.txBytes, 0) : null,
      cpuPercent: null,
      guestMemory: stats?.guestMemory ?? null,
      nics: nics ?? [],
    };
  }

  vmMetrics(vmId: string, range: MetricsRange = '1h'): VmMetrics {
    this.deps.requireVm(vmId);
    const seconds = RANGE_SECONDS[range];
    const s = this.vms.get(vmId);
    const ring = s?.ring ?? new MetricsRing();
    const { step, points } = ring.range(seconds, Math.floor(this.now() / 1000));
    const series = { t: points.map((p) => p.t) } as VmMetrics['series'];
    for (const f of FIELDS) series[f] = points.map((p) => round(p.v[f]));
    const last = s?.last ?? null;
    const current = last && this.deps.runtime.process(vmId)
      ? {
          at: new Date(last.at).toISOString(),
          cpuPercent: round(last.cpuPercent),
          cpuSeconds: round(last.cpuSeconds),
          rssBytes: last.rssBytes,
          diskReadBytes: last.diskReadBytes,
          diskWriteBytes: last.diskWriteBytes,
          diskReadOps: last.diskReadOps,
          diskWriteOps: last.diskWriteOps,
          netRxBytes: last.netRxBytes,
          netTxBytes: last.netTxBytes,
          guestMemoryTotalBytes: last.guestMemory?.totalBytes ?? null,
          guestMemoryAvailableBytes: last.guestMemory?.availableBytes ?? null,
          nics: last.nics ?? [],
        }
      : null;
    return { vmId, range, stepSeconds: step, series, current };
  }

  /** Every VM's CPU of the last 15 minutes in 30 s points (one request for the whole list). */
  summary(): MetricsSummary {
    const nowS = Math.floor(this.now() / 1000);
    const first = Math.floor(nowS / SUMMARY_STEP) * SUMMARY_STEP - (SUMMARY_POINTS - 1) * SUMMARY_STEP;
    return {
      stepSeconds: SUMMARY_STEP,
      vms: this.deps.repo.vms().map((vm) => {
        const s = this.vms.get(vm.id);
        const running = this.deps.runtime.process(vm.id) !== null;
        const cpu: Array<number | null> = new Array<number | null>(SUMMARY_POINTS).fill(null);
        if (s) {
          const sums = new Array<number>(SUMMARY_POINTS).fill(0);
          const ns = new Array<number>(SUMMARY_POINTS).fill(0);
          for (const p of s.ring.range(900, nowS).points) {
            const i = Math.floor((p.t - first) / SUMMARY_STEP);
            const x = p.v.cpuPercent;
            if (i >= 0 && i < SUMMARY_POINTS && x !== null) {
              sums[i]! += x;
              ns[i]! += 1;
            }
          }
          for (let i = 0; i < SUMMARY_POINTS; i++) if (ns[i]) cpu[i] = round(sums[i]! / ns[i]!);
        }
        return { id: vm.id, running, cpuPercent: running ? round(s?.last?.cpuPercent ?? null) : null, cpu };
      }),
    };
  }

  host(): HostMetrics {
    const mem = readMeminfo() ?? { totalBytes: os.totalmem(), availableBytes: os.freemem() };
    return {
      timestamp: new Date(this.now()).toISOString(),
      cpu: { cores: Math.max(1, os.availableParallelism()), percent: round(this.hostPercent), loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      memory: mem,
      storage: this.deps.storage().map((l) => ({ ...l, ...space(l.path) })),
    };
  }

  /** What the Prometheus exposition shows: every VM with its last sample (null when it is not running). */
  snapshot(): { vms: PromVm[]; host: HostMetrics } {
    const vms = this.deps.repo.vms().map((vm) => ({
      ...vm,
      last: this.deps.runtime.process(vm.id) ? (this.vms.get(vm.id)?.last ?? null) : null,
    }));
    return { vms, host: this.host() };
  }

  /**
   * The VM's screen as PNG, scaled down to `width` when given (never up). One QMP screendump per VM
   * every few seconds at most, however many viewers ask and whatever widths they ask for; the few
   * last widths' PNGs are kept with the frame.
   */
  async screenshot(vmId: string, width: number | null): Promise<Buffer> {
    this.deps.requireVm(vmId);
    if (width !== null && (width < 16 || width > 1920)) throw new AppError('VALIDATION', 'width must be between 16 and 1920');
    const take = this.deps.runtime.screenshot?.bind(this.deps.runtime);
    if (!take) throw new AppError('QEMU_ERROR', 'This hypervisor cannot take screenshots');
    if (!this.deps.runtime.process(vmId)) throw new AppError('VM_NOT_RUNNING', 'VM is not running');
    const now = this.now();
    for (const [k, v] of this.shots) if (now - v.at > SCREENSHOT_TTL_MS) this.shots.delete(k);
    let shot = this.shots.get(vmId);
    if (!shot) {
      const frame = take(vmId).then((raw) => {
        try {
          return { raw, img: decodePng(raw) };
        } catch (err) {
          if (err instanceof PngError) throw new AppError('QEMU_ERROR', `QEMU wrote an unreadable screenshot (${err.message})`);
          throw err;
        }
      });
      shot = { at: now, frame, scaled: new Map() };
      this.shots.set(vmId, shot);
      const mine = shot;
      frame.catch(() => {
        if (this.shots.get(vmId) === mine) this.shots.delete(vmId);
      });
    }
    const { raw, img } = await shot.frame;
    if (width === null || width >= img.width) return raw;
    let png = shot.scaled.get(width);
    if (!png) {
      png = encodePng(scaleRgb(img, width));
      if (shot.scaled.size >= 4) shot.scaled.delete(shot.scaled.keys().next().value!);
      shot.scaled.set(width, png);
    }
    return png;
  }
}

/** Rates between two samples (null where a counter is unknown or went back: a new QEMU). */
export function rates(prev: VmCounters | null, cur: VmCounters): Sample {
  const dt = prev ? (cur.at - prev.at) / 1000 : 0;
  const rate = (a: number | null | undefined, b: number | null) => {
    if (!prev || dt <= 0 || a === null || a === undefined || b === null || b < a) return null;
    return (b - a) / dt;
  };
  const cpu = rate(prev?.cpuSeconds, cur.cpuSeconds);
  return {
    cpuPercent: cpu === null ? null : cpu * 100,
    rssBytes: cur.rssBytes,
    diskReadBps: rate(prev?.diskReadBytes, cur.diskReadBytes),
    diskWriteBps: rate(prev?.diskWriteBytes, cur.diskWriteBytes),
    diskReadOps: rate(prev?.diskReadOps, cur.diskReadOps),
    diskWriteOps: rate(prev?.diskWriteOps, cur.diskWriteOps),
    netRxBps: rate(prev?.netRxBytes, cur.netRxBytes),
    netTxBps: rate(prev?.netTxBytes, cur.netTxBytes),
  };
}

function round(x: number | null): number | null {
  return x === null ? null : Math.round(x * 100) / 100;
}

function space(dir: string): { freeBytes: number | null; totalBytes: number | null } {
  try {
    const s = fs.statfsSync(dir);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return { freeBytes: null, totalBytes: null };
  }
}
