// The host dashboard (issue 14): host CPU and memory (bars, and a small graph of what this page
// has seen since it opened), free storage per storage root and backup target (bars), and the
// running machines (GET /api/metrics/summary: count and the busiest with their CPU sparklines).
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import type { HostMetrics } from '@qemu-manager/contract';
import { hostApi, networkKeys } from '../../api/networks';
import { useVms } from '../../api/queries';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { ProgressBar } from '../../components/ProgressBar';
import { locale, t } from '../../i18n';
import { formatBytes, formatExactTime } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { Link, paths } from '../../router';
import { CpuSparkline } from '../metrics/CpuSparkline';
import { seriesPath, sparklinePath } from '../metrics/sparkline';
import { busiest, memoryUsedBytes, pushSample, storageUsedPercent, usedPercent } from './hostFigures';
import '../networks/networks.css';

const W = 280;
const H = 48;

function History({ label, values, colour, percent }: { label: string; values: ReadonlyArray<number | null>; colour: string; percent?: boolean }) {
  if (values.length < 2) return null;
  return (
    <svg width="100%" height={H} viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${label}: ${t.host.history}`}>
      <path d={percent ? sparklinePath(values, W, H - 1) : seriesPath(values, W, H - 1)} fill="none" stroke={colour} strokeWidth="1.5" vectorEffect="non-scaling-stroke" />
    </svg>
  );
}

const pct = (v: number | null) => (v === null ? '—' : `${new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(v)} %`);

export default function HostPage() {
  const w = t.host;
  useTitle(w.title);
  const host = useQuery({ queryKey: networkKeys.host, queryFn: ({ signal }) => hostApi.metrics(signal), refetchInterval: 5_000, staleTime: 2_000 });
  const summary = useQuery({ queryKey: networkKeys.summary, queryFn: ({ signal }) => hostApi.summary(signal), refetchInterval: 10_000, staleTime: 5_000 });
  const vms = useVms();
  const [cpuHist, setCpuHist] = useState<Array<number | null>>([]);
  const [memHist, setMemHist] = useState<Array<number | null>>([]);
  const seen = useRef<string | null>(null);
  useEffect(() => {
    const d: HostMetrics | undefined = host.data;
    if (!d || d.timestamp === seen.current) return;
    seen.current = d.timestamp;
    setCpuHist((h) => pushSample(h, d.cpu.percent));
    setMemHist((h) => pushSample(h, memoryUsedBytes(d.memory)));
  }, [host.data]);
  const d = host.data;
  const names = new Map((vms.data ?? []).map((v) => [v.id, v.name]));
  const top = busiest(summary.data);
  const running = summary.data ? summary.data.vms.filter((v) => v.running).length : (vms.data?.filter((v) => v.status !== 'stopped').length ?? 0);
  const all = summary.data?.vms.length ?? vms.data?.length ?? 0;
  return (
    <section className="page" data-testid="host-page">
      <PageHeader title={w.title} intro={w.intro} />
      <ListStatus failed={host.isError && !d} loading={host.isPending} error={host.error} failedText={w.loadFailed} retry={host.refetch} testId="host-error" />
      {d && (
        <div className="host-grid">
          <section className="card" data-testid="host-cpu" aria-labelledby="host-cpu-title">
            <h2 id="host-cpu-title">{w.cpu}</h2>
            <p className="host-figure" data-testid="host-cpu-value" data-value={d.cpu.percent ?? ''}>{w.cpuValue(pct(d.cpu.percent), d.cpu.cores)}</p>
            <div className="host-bar"><ProgressBar value={d.cpu.percent ?? 0} label={w.cpu} testId="host-cpu-bar" /></div>
            {d.cpu.loadAverage.length > 0 && <p className="muted small">{w.load(d.cpu.loadAverage.map((x) => x.toFixed(2)).join(' · '))}</p>}
            <History label={w.cpu} values={cpuHist} colour="#2f7de1" percent />
          </section>
          <section className="card" data-testid="host-memory" aria-labelledby="host-memory-title">
            <h2 id="host-memory-title">{w.memory}</h2>
            <p className="host-figure" data-testid="host-memory-value" data-total={d.memory.totalBytes} data-available={d.memory.availableBytes}>
              {w.memoryValue(formatBytes(memoryUsedBytes(d.memory)), formatBytes(d.memory.totalBytes))}
            </p>
            <div className="host-bar"><ProgressBar value={usedPercent(memoryUsedBytes(d.memory), d.memory.totalBytes) ?? 0} label={w.memory} testId="host-memory-bar" /></div>
            <History label={w.memory} values={memHist} colour="#8a4fd8" />
          </section>
          <section className="card" data-testid="host-storage" aria-labelledby="host-storage-title">
            <h2 id="host-storage-title">{w.storage}</h2>
            {d.storage.length === 0 && <p className="muted">{w.noStorage}</p>}
            {d.storage.map((s) => {
              const label = s.kind === 'backup-target' ? w.backupTarget(s.name) : `${w.storageRoot} ${s.path}`;
              return (
                <div key={`${s.kind}:${s.name}:${s.path}`} className="host-storage-item" data-testid="host-storage-item" data-kind={s.kind} data-free={s.freeBytes ?? ''}>
                  <p className="small" style={{ margin: '8px 0 0' }} title={s.path}><strong>{label}</strong></p>
                  <div className="host-bar"><ProgressBar value={storageUsedPercent(s) ?? 0} label={label} /></div>
                  <p className="muted small" style={{ margin: 0 }}>
                    {s.freeBytes === null || s.totalBytes === null ? w.storageUnknown : w.storageValue(formatBytes(s.freeBytes), formatBytes(s.totalBytes))}
                  </p>
                </div>
              );
            })}
          </section>
          <section className="card" data-testid="host-vms" aria-labelledby="host-vms-title">
            <h2 id="host-vms-title">{w.vms}</h2>
            <p className="host-figure" data-testid="host-vms-running" data-running={running}>{w.vmsRunning(running, all)}</p>
            {top.length === 0 ? (
              <p className="muted small">{w.noneRunning}</p>
            ) : (
              <>
                <h3 className="small">{w.topCpu}</h3>
                <ul className="small" style={{ listStyle: 'none', padding: 0, margin: 0 }}>
                  {top.map((v) => {
                    const name = names.get(v.id) ?? v.id.slice(0, 8);
                    return (
                      <li key={v.id} style={{ display: 'flex', alignItems: 'center', gap: 8, justifyContent: 'space-between' }}>
                        <Link to={paths.vm(v.id)}>{name}</Link>
                        <span>{pct(v.cpuPercent)}<CpuSparkline cpu={v} name={name} /></span>
                      </li>
                    );
                  })}
                </ul>
              </>
            )}
          </section>
        </div>
      )}
      {d && <p className="muted small"><time dateTime={d.timestamp}>{w.updated(formatExactTime(d.timestamp))}</time></p>}
    </section>
  );
}
