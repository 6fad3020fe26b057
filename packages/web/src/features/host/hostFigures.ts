// The host dashboard (issue 14): figures derived from GET /api/host/metrics, pure (unit-tested).
import type { HostMetrics, HostStorage, MetricsSummary } from '@qemu-manager/contract';

/** 0–100, rounded to one decimal; null when unknown. */
export function usedPercent(used: number | null, total: number | null): number | null {
  if (used === null || total === null || total <= 0) return null;
  return Math.round(Math.min(100, Math.max(0, (used / total) * 100)) * 10) / 10;
}

export const memoryUsedBytes = (m: HostMetrics['memory']): number => Math.max(0, m.totalBytes - m.availableBytes);

export function storageUsedPercent(s: HostStorage): number | null {
  if (s.freeBytes === null || s.totalBytes === null) return null;
  return usedPercent(s.totalBytes - s.freeBytes, s.totalBytes);
}

/** How many samples the page keeps for its own small history graphs (5 s apart: 10 minutes). */
export const HISTORY_POINTS = 120;

/** Append one value, keeping the last `max`. */
export function pushSample(list: ReadonlyArray<number | null>, v: number | null, max = HISTORY_POINTS): Array<number | null> {
  const next = [...list, v];
  return next.length > max ? next.slice(next.length - max) : next;
}

/** The running VMs, busiest first, at most `n`. */
export function busiest(summary: MetricsSummary | undefined, n = 5): MetricsSummary['vms'] {
  return (summary?.vms ?? []).filter((v) => v.running).sort((a, b) => (b.cpuPercent ?? -1) - (a.cpuPercent ?? -1)).slice(0, n);
}
