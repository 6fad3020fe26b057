import type { Vm } from '@qemu-manager/contract';
import { CopyButton } from '../../components/CopyButton';
import { formatCommandLine, formatDateTime } from '../../lib/format';
import { t } from '../../i18n';

export function VmInfoSection({ vm }: { vm: Vm }) {
  const running = vm.status !== 'stopped';
  return (
    <section className="card" data-testid="vm-info">
      <h2>{t.detail.display}</h2>
      <dl className="props">
        <dt>{t.detail.vncDisplay}</dt>
        <dd data-testid="vm-vnc-display">:{vm.vnc_port - 5900}</dd>
        <dt>{t.detail.vncPort}</dt>
        <dd data-testid="vm-vnc-port">{vm.vnc_port}</dd>
        <dt>{t.detail.mac}</dt>
        <dd className="mono">{vm.mac}</dd>
        {running && vm.pid != null && (
          <>
            <dt>{t.detail.pid}</dt>
            <dd className="mono">{vm.pid}</dd>
          </>
        )}
        <dt>{t.detail.created}</dt>
        <dd data-testid="vm-created">{formatDateTime(vm.createdAt)}</dd>
        {running && vm.startedAt && (
          <>
            <dt>{t.detail.started}</dt>
            <dd>{formatDateTime(vm.startedAt)}</dd>
          </>
        )}
      </dl>
      <p className="muted small">{t.detail.vncLocal}</p>
    </section>
  );
}

export function LastCommandSection({ vm }: { vm: Vm }) {
  return (
    <section className="card" data-testid="vm-last-command">
      <div className="card-header">
        <h2>{t.detail.lastCommand}</h2>
        {vm.lastCommand && <CopyButton text={vm.lastCommand} testId="copy-last-command" />}
      </div>
      {vm.lastCommand ? <pre className="command" data-testid="last-command">{formatCommandLine(vm.lastCommand)}</pre> : <p className="muted">{t.detail.lastCommandNone}</p>}
    </section>
  );
}
