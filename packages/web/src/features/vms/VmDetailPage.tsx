import { Suspense, useState } from 'react';
import type { Vm } from '@qemu-manager/contract';
import { useVm } from '../../api/queries';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { StatusBadge } from '../../components/StatusBadge';
import { formatMiB, uptimeLabel } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { LazyConsoleView, LazySerialConsole } from '../console/lazy'; // serial console (issue 14)
import { RecentTasks } from '../tasks/RecentTasks';
import { canOpenConsole } from './actions';
import { ResourcesSection } from './ResourcesSection';
import { AutostartSection } from './AutostartSection';
import { VmActions } from './VmActions';
import { VmDisksSection } from './VmDisksSection';
import { LastCommandSection, VmInfoSection } from './VmInfoSection';
import { VmIsoSection } from './VmIsoSection';
import { CloneVmDialog } from './CloneVmDialog';
import { SnapshotsSection } from './SnapshotsSection';
import { BackupsSection } from '../backups/BackupsSection';
import { HardwareSection } from './HardwareSection';
import { CloudInitSection } from './CloudInitSection';
import { hardwareSummary } from './hardwareRules';
import { VmMetricsSection } from '../metrics/VmMetricsSection'; // metrics (issue 14)
import { BootHint } from '../metrics/BootHint'; // the stuck-boot hint (issue 14)
import { VmNetworkSection } from '../networks/VmNetworkSection'; // networks (issue 11)

export function VmDetailPage({ id }: { id: string }) {
  const vm = useVm(id);
  if (vm.isError && (vm.error as { status?: number }).status === 404) {
    return (
      <section className="page">
        <ErrorText error={t.detail.notFound} testId="vm-not-found" />
        <p><Link to={paths.vms}>{t.app.backToList}</Link></p>
      </section>
    );
  }
  if (vm.isError) return <section className="page"><ErrorText error={vm.error} testId="vm-load-error" /></section>;
  if (!vm.data) return <section className="page"><p className="muted">{t.app.loading}</p></section>;
  return <VmDetail vm={vm.data} />;
}

function VmDetail({ vm }: { vm: Vm }) {
  const now = useNow();
  useTitle(vm.name);
  const up = vm.status !== 'stopped' ? uptimeLabel(vm.startedAt, now, t.vms) : null;
  const [cloning, setCloning] = useState(false);
  return (
    <section className="page" data-testid="vm-detail-page">
      <nav className="breadcrumb"><Link to={paths.vms}>← {t.detail.back}</Link></nav>
      <div className="page-header detail-header">
        <div className="detail-title">
          <h1 data-testid="vm-detail-name">{vm.name}</h1>
          <StatusBadge status={vm.status} testId="vm-detail-status" />
          <BootHint vm={vm} testId="vm-detail-hint" />
          <span className="muted">
            {t.units.cpus(vm.cpus)} · {formatMiB(vm.memory)}
            {up && ` · ${up}`}
          </span>
          <span className="badge badge-hw" data-testid="vm-hw-summary">{hardwareSummary(vm)}</span>
        </div>
        <div className="detail-header-actions">
          <VmActions vm={vm} context="page" />
          <Button size="sm" variant="ghost" disabled={vm.status !== 'stopped'} title={vm.status !== 'stopped' ? t.storage.cloneVmNotStopped : undefined}
            onClick={() => setCloning(true)} data-testid="vm-clone-open">{t.storage.cloneVm}</Button>
        </div>
      </div>
      {cloning && <CloneVmDialog vm={vm} onClose={() => setCloning(false)} />}
      {vm.template && <p className="note" data-testid="vm-is-template">{t.template.isTemplate}</p>}
      <div className="detail-grid">
        <div className="detail-col">
          <ResourcesSection vm={vm} />
          <HardwareSection vm={vm} />
          <VmDisksSection vm={vm} />
          <VmIsoSection vm={vm} />
          <SnapshotsSection vm={vm} />
          <BackupsSection vm={vm} />
        </div>
        <div className="detail-col">
          <ConsoleSection vm={vm} />
          <VmInfoSection vm={vm} />
          <VmNetworkSection vm={vm} />
          <VmMetricsSection vm={vm} />
          <AutostartSection vm={vm} />
          <CloudInitSection vm={vm} />
          <RecentTasks vm={vm.id} />
        </div>
      </div>
      <LastCommandSection vm={vm} />
    </section>
  );
}

function ConsoleSection({ vm }: { vm: Vm }) {
  const [shown, setShown] = useState(false);
  const [tab, setTab] = useState<'vnc' | 'serial'>('vnc'); // serial console (issue 14)
  const available = canOpenConsole(vm.status);
  return (
    <section className="card" data-testid="vm-console-section">
      <div className="card-header">
        <h2>{t.detail.consoleTitle}</h2>
        {(available || shown) && (
          <div className="card-actions">
            {/* serial console (issue 14): the VNC screen or the serial port */}
            <div role="tablist" className="console-tabs">
              {(['vnc', 'serial'] as const).map((k) => (
                <Button key={k} role="tab" aria-selected={tab === k} size="sm" variant={tab === k ? 'secondary' : 'ghost'}
                  onClick={() => { setTab(k); setShown(true); }} data-testid={`console-tab-${k}`}>
                  {k === 'vnc' ? t.serial.tabVnc : t.serial.tabSerial}
                </Button>
              ))}
            </div>
            <Button size="sm" variant={shown ? 'ghost' : 'secondary'} onClick={() => setShown((s) => !s)} data-testid="console-embed-toggle">
              {shown ? t.detail.consoleHide : t.detail.consoleShow}
            </Button>
            <a className="btn btn-ghost btn-sm" href={paths.console(vm.id)} target="_blank" rel="noopener" data-testid="console-new-tab">
              {t.detail.consoleNewTab} ↗
            </a>
          </div>
        )}
      </div>
      {shown ? (
        <Suspense fallback={<p className="muted">{t.app.loading}</p>}>
          {tab === 'serial' ? <LazySerialConsole vm={vm} /> : <LazyConsoleView vm={vm} variant="embedded" />}
        </Suspense>
      ) : (
        <p className="muted">{available ? t.detail.consoleHint : t.detail.consoleNotRunning}</p>
      )}
    </section>
  );
}
