// Metrics (issue 14): the VM page's graphs — CPU, memory (RSS), disk read/write — over 15 min,
// 1 h or 24 h from GET /api/vms/{id}/metrics, drawn as plain SVG lines (no chart library), polled
// every 10 s while the VM runs. Also the host's figures (GET /api/host/metrics), small.
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import type { HostMetrics, MetricsRange, Vm, VmMetrics } from '@qemu-manager/contract';
import { request } from '../../api/client';
import { t } from '../../i18n';
import { formatBytes } from '../../lib/format';
import { seriesPath } from './sparkline';

const RANGES: readonly MetricsRange[] = ['15m', '1h', '24h'];
const W = 280;
const H = 48;

function Graph({ title, values, current, colour }: { title: string; values: ReadonlyArray<number | null>; current: string; colour: string }) {
  return (
    <figure className="metric-graph" style={{ margin: '0.5rem 0' }}>
      <figcaption className="small"><strong>{title}</strong> <span className="muted">{current}</span></figcaption>
      <svg width="100%" height={H} viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${title}: ${current}`}>
        <path d={seriesPath(values, W, H - 1)} fill="none" stroke={colour} strokeWidth="1.5" vectorEffect="non-scaling-stroke" />
      </svg>
    </figure>
  );
}

export function VmMetricsSection({ vm }: { vm: Vm }) {
  const [range, setRange] = useState<MetricsRange>('15m');
  const running = vm.status !== 'stopped';
  const q = useQuery({
    queryKey: ['metrics', 'vm', vm.id, range] as const,
    queryFn: ({ signal }) => request<VmMetrics>('GET', `/vms/${encodeURIComponent(vm.id)}/metrics?range=${range}`, undefined, { signal }),
    refetchInterval: running ? 10_000 : false,
  });
  const host = useQuery({
    queryKey: ['metrics', 'host'] as const,
    queryFn: ({ signal }) => request<HostMetrics>('GET', '/host/metrics', undefined, { signal }),
    refetchInterval: 15_000,
  });
  const m = q.data;
  const c = m?.current ?? null;
  const s = m?.series;
  const rate = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${formatBytes(v)}/s`);
  const last = (col: ReadonlyArray<number | null> | undefined) => col?.filter((x) => x !== null).at(-1) ?? null;
  return (
    <section className="card" data-testid="vm-metrics">
      <h2>{t.metrics.title}</h2>
      <div role="group" aria-label={t.metrics.range} className="button-row">
        {RANGES.map((r) => (
          <button key={r} type="button" className={r === range ? 'btn btn-primary btn-small' : 'btn btn-small'} aria-pressed={r === range} onClick={() => setRange(r)} data-testid={`metrics-range-${r}`}>
            {t.metrics.ranges[r]}
          </button>
        ))}
      </div>
      {q.isError && <p className="muted">{t.metrics.loadFailed}</p>}
      {s && s.t.length === 0 && <p className="muted" data-testid="metrics-empty">{t.metrics.empty}</p>}
      {s && s.t.length > 0 && (
        <>
          <Graph title={t.metrics.cpuTitle} values={s.cpuPercent} current={c?.cpuPercent != null ? `${Math.round(c.cpuPercent)} %` : '—'} colour="#2f7de1" />
          <Graph title={t.metrics.memoryTitle} values={s.rssBytes} current={c?.rssBytes != null ? formatBytes(c.rssBytes) : '—'} colour="#8a4fd8" />
          <Graph title={t.metrics.diskWriteTitle} values={s.diskWriteBps} current={rate(last(s.diskWriteBps))} colour="#d8684f" />
          <Graph title={t.metrics.diskReadTitle} values={s.diskReadBps} current={rate(last(s.diskReadBps))} colour="#3b9d5d" />
        </>
      )}
      {host.data && (
        <p className="small muted" data-testid="host-metrics">
          {t.metrics.host(
            host.data.cpu.percent === null ? '—' : `${Math.round(host.data.cpu.percent)} %`,
            host.data.cpu.cores,
            formatBytes(host.data.memory.availableBytes),
            formatBytes(host.data.memory.totalBytes),
          )}
          {host.data.storage.map((st) => (
            <span key={`${st.kind}:${st.name}`} style={{ display: 'block' }} title={st.path}>
              {st.kind === 'backup-target' ? t.metrics.backupTarget(st.name) : st.path}: {t.metrics.free(st.freeBytes === null ? '—' : formatBytes(st.freeBytes))}
            </span>
          ))}
        </p>
      )}
    </section>
  );
}
