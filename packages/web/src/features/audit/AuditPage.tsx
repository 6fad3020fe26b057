import type { AuditEntry } from '@qemu-manager/contract';
import { useDisks, useTokens, useVms } from '../../api/queries';
import { AdminRequired, isForbidden, useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { EmptyState } from '../../components/EmptyState';
import { ErrorText } from '../../components/ErrorText';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { formatExactTime, relativeTime } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { auditResult, describeAction, describeActor, mergePages, resolveTarget, shown, type TargetLookups } from './auditWords';
import { useAuditLog } from './useAuditLog';

/** The page is lazy-loaded (see ./lazy.ts), hence the default export. */
export default function AuditPage() {
  useTitle(t.audit.title);
  const readOnly = useReadOnlyAccess();
  const log = useAuditLog(!readOnly);
  const vms = useVms();
  const disks = useDisks();
  const tokens = useTokens(!readOnly);
  const now = useNow(15_000);
  const denied = readOnly || isForbidden(log.error);
  const entries = log.data ? mergePages(log.data.pages) : [];
  const lookups: TargetLookups = { vms: vms.data, disks: disks.data, tokens: tokens.data };
  const listFailed = log.isError && !log.isFetchNextPageError && !denied;
  return (
    <section className="page" data-testid="audit-page">
      <PageHeader title={t.audit.title} intro={t.audit.intro} />
      <AdminRequired error={log.error} readOnly={readOnly} />
      <ListStatus failed={listFailed} loading={log.isPending && !denied} error={log.error} failedText={t.audit.loadFailed} retry={log.refetch} testId="audit-list-error" />
      {log.data && entries.length === 0 && <EmptyState title={t.audit.empty} hint={t.audit.emptyHint} testId="audit-list-empty" />}
      {entries.length > 0 && (
        <div className="table audit-table" role="table" aria-label={t.audit.title}>
          <div className="table-head" role="row">
            {(['time', 'who', 'action', 'target', 'result'] as const).map((c) => (
              <span key={c} role="columnheader">{t.audit.columns[c]}</span>
            ))}
          </div>
          {entries.map((e) => <AuditRow key={e.id} entry={e} now={now} lookups={lookups} />)}
        </div>
      )}
      {entries.length > 0 && (
        <div className="audit-more">
          {log.hasNextPage ? (
            <Button onClick={() => void log.fetchNextPage()} busy={log.isFetchingNextPage} data-testid="audit-load-older">{t.audit.loadOlder}</Button>
          ) : (
            log.data && log.data.pages.length > 1 && <span className="muted small" data-testid="audit-all-loaded">{t.audit.allLoaded}</span>
          )}
          {log.isFetchNextPageError && <ErrorText error={`${t.audit.loadOlderFailed} ${(log.error).message}`} testId="audit-older-error" />}
        </div>
      )}
    </section>
  );
}

function AuditRow({ entry, now, lookups }: { entry: AuditEntry; now: number; lookups: TargetLookups }) {
  const result = auditResult(entry.status);
  const target = resolveTarget(entry, lookups);
  return (
    <div className="table-row audit-row" role="row" data-testid="audit-row" data-action={shown(entry.action)} data-status={entry.status}>
      <span role="cell" data-label={t.audit.columns.time} className="audit-time">
        <time dateTime={entry.at} title={formatExactTime(entry.at)}>{relativeTime(entry.at, now, t.time)}</time>
      </span>
      <span role="cell" data-label={t.audit.columns.who} className="cell-list">
        <span title={shown(entry.actor)} data-testid="audit-actor">{describeActor(entry.actor)}</span>
        {entry.ip && <span className="muted small">{shown(entry.ip)}</span>}
      </span>
      <span role="cell" className="cell-name audit-action">
        <span title={shown(entry.action)} data-testid="audit-action">{describeAction(entry.action)}</span>
      </span>
      <span role="cell" data-label={t.audit.columns.target} className="cell-list" data-testid="audit-target">
        {!target ? (
          <span className="muted">{t.common.none}</span>
        ) : target.kind === 'vm' && target.id ? (
          <Link to={paths.vm(target.id)} title={target.id}>{target.label}</Link>
        ) : target.id ? (
          <span title={target.id}>{target.label}</span>
        ) : (
          <span className={target.kind === 'iso' ? '' : 'mono muted'} title={target.label}>{target.label}</span>
        )}
      </span>
      <span role="cell" data-label={t.audit.columns.result} className={result.ok ? 'audit-ok' : 'audit-refused'} data-testid="audit-result">
        {result.label}
      </span>
    </div>
  );
}
