import { useState } from 'react';
import type { Vm } from '@qemu-manager/contract';
import { useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { EmptyState } from '../../components/EmptyState';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { StatusBadge } from '../../components/StatusBadge';
import { basename, formatMiB, uptimeLabel } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { CreateVmDialog } from './CreateVmDialog';
import { VmActions } from './VmActions';
import { autostartMarker } from './autostartForm';
import { hardwareSummary } from './hardwareRules';
import { CpuSparkline } from '../metrics/CpuSparkline'; // metrics (issue 14)
import { useMetricsSummary, type VmCpu } from '../metrics/useMetricsSummary';
import { VmThumbnail } from '../metrics/VmThumbnail';
import { BootHint } from '../metrics/BootHint'; // the stuck-boot hint (issue 14)
import { VmIp } from '../networks/VmIp'; // networks (issue 11)

export function VmListPage() {
  const vms = useVms();
  useTitle(t.vms.title);
  const [creating, setCreating] = useState(false);
  const cpu = useMetricsSummary(); // metrics (issue 14): one request for every row's sparkline
  const sorted = vms.data ? [...vms.data].sort((a, b) => a.name.localeCompare(b.name)) : [];
  return (
    <section className="page" data-testid="vm-list-page">
      <PageHeader
        title={t.vms.title}
        action={<Button variant="primary" onClick={() => setCreating(true)} data-testid="create-vm-open">{t.vms.create}</Button>}
      />
      <ListStatus failed={vms.isError} loading={vms.isPending} error={vms.error} failedText={t.vms.loadFailed} retry={vms.refetch} testId="vm-list-error" />
      {vms.data && vms.data.length === 0 && (
        <EmptyState
          title={t.vms.empty}
          hint={t.vms.emptyHint}
          testId="vm-list-empty"
          action={<Button variant="primary" onClick={() => setCreating(true)}>{t.vms.create}</Button>}
        />
      )}
      {sorted.length > 0 && (
        <div className="table vm-table" role="table" aria-label={t.vms.title}>
          <div className="table-head" role="row">
            {(['name', 'status', 'cpus', 'memory', 'disks', 'iso'] as const).map((c) => (
              <span key={c} role="columnheader">{t.vms.columns[c]}</span>
            ))}
            <span role="columnheader" className="sr-only">{t.vms.columns.actions}</span>
          </div>
          {sorted.map((vm) => <VmRow key={vm.id} vm={vm} cpu={cpu.get(vm.id)} />)}
        </div>
      )}
      <CreateVmDialog open={creating} onClose={() => setCreating(false)} />
    </section>
  );
}

function VmRow({ vm, cpu }: { vm: Vm; cpu?: VmCpu }) {
  const now = useNow();
  const up = vm.status !== 'stopped' ? uptimeLabel(vm.startedAt, now, t.vms) : null;
  const auto = autostartMarker(vm.autostart);
  const hw = hardwareSummary(vm, true);
  return (
    <div className="table-row vm-row" role="row" data-testid={`vm-row-${vm.name}`} data-status={vm.status}>
      <span role="cell" className="cell-name">
        <Link to={paths.vm(vm.id)} className="vm-name" data-testid={`vm-link-${vm.name}`}>{vm.name}</Link>
        {auto && (
          <span className="badge badge-autostart" title={t.autostart.markerTitle(auto.order, auto.delayS)} data-testid={`vm-autostart-${vm.name}`}>
            {t.autostart.marker} {auto.order}
          </span>
        )}
        {hw && <span className="badge badge-hw" data-testid={`vm-hw-${vm.name}`}>{hw}</span>}
        {up && <span className="muted small">{up}</span>}
        <VmIp vm={vm} />
      </span>
      <span role="cell" data-label={t.vms.columns.status} className="cell-vmstatus">
        <StatusBadge status={vm.status} testId={`vm-status-${vm.name}`} />
        <BootHint vm={vm} testId={`vm-hint-${vm.name}`} />
        <CpuSparkline cpu={cpu} name={vm.name} />
        {vm.status !== 'stopped' && <VmThumbnail id={vm.id} name={vm.name} running={vm.status === 'running' || vm.status === 'paused'} />}
      </span>
      <span role="cell" data-label={t.vms.columns.cpus} className="num">{vm.cpus}</span>
      <span role="cell" data-label={t.vms.columns.memory} className="num">{formatMiB(vm.memory)}</span>
      <span role="cell" data-label={t.vms.columns.disks} className="cell-list">
        {vm.disks.length === 0 ? <span className="muted">{t.vms.noDisks}</span> : vm.disks.map((d) => <span key={d.path} title={d.path}>{basename(d.path)}</span>)}
      </span>
      <span role="cell" data-label={t.vms.columns.iso} className="cell-list cell-iso">
        {vm.iso ? <span title={vm.iso}>{basename(vm.iso)}</span> : <span className="muted">{t.vms.noIso}</span>}
      </span>
      <span role="cell" className="cell-actions">
        <VmActions vm={vm} context="row" />
      </span>
    </div>
  );
}
