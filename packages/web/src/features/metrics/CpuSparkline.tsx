// Metrics (issue 14): a VM's CPU of the last 15 minutes as a small SVG line (no chart library:
// a thousand rows stay cheap).
import { memo } from 'react';
import { t } from '../../i18n';
import { sparklinePath } from './sparkline';
import type { VmCpu } from './useMetricsSummary';

const W = 60;
const H = 16;

export const CpuSparkline = memo(function CpuSparkline({ cpu, name }: { cpu: VmCpu | undefined; name: string }) {
  if (!cpu?.running) return null;
  const label = cpu.cpuPercent === null ? t.metrics.cpuUnknown : t.metrics.cpu(Math.round(cpu.cpuPercent));
  return (
    <svg className="sparkline" style={{ verticalAlign: "middle", marginInlineStart: 6, opacity: 0.8 }} width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} data-testid={`vm-cpu-${name}`}>
      <title>{label}</title>
      <path d={sparklinePath(cpu.cpu, W, H - 1)} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
});
