import { Suspense } from 'react';
import { useVm } from '../../api/queries';
import { ErrorText } from '../../components/ErrorText';
import { StatusBadge } from '../../components/StatusBadge';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { LazyConsoleView } from './lazy';

/** Full-window console (/vms/:id/console), also meant to be opened in its own tab. */
export function ConsolePage({ id }: { id: string }) {
  const vm = useVm(id);
  useTitle(vm.data ? t.console.title(vm.data.name) : undefined);
  const leading = (
    <div className="console-title">
      <Link to={paths.vm(id)} className="back-link" data-testid="console-back">
        ← {t.console.backToVm}
      </Link>
      {vm.data && (
        <>
          <h1>{vm.data.name}</h1>
          <StatusBadge status={vm.data.status} testId="console-vm-status" />
        </>
      )}
    </div>
  );
  return (
    <div className="console-page" data-testid="console-page">
      {vm.isError && (
        <div className="console-title-bar">
          {leading}
          <ErrorText error={vm.error} testId="console-load-error" />
        </div>
      )}
      {vm.data && (
        <Suspense fallback={<div className="console-title-bar">{leading}</div>}>
          <LazyConsoleView vm={vm.data} variant="page" leading={leading} />
        </Suspense>
      )}
    </div>
  );
}
