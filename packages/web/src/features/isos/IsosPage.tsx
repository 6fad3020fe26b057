import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Iso, Vm } from '@qemu-manager/contract';
import { isosApi } from '../../api/endpoints';
import { qk, useIsos, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { EmptyState } from '../../components/EmptyState';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { formatBytes, formatDateTime } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { UploadIso } from './UploadIso';

export function IsosPage() {
  const isos = useIsos();
  useTitle(t.isos.title);
  const vms = useVms();
  const sorted = isos.data ? [...isos.data].sort((a, b) => a.name.localeCompare(b.name)) : [];
  return (
    <section className="page" data-testid="isos-page">
      <PageHeader title={t.isos.title} />
      <UploadIso existing={isos.data} />
      <ListStatus failed={isos.isError} loading={isos.isPending} error={isos.error} failedText={t.isos.loadFailed} retry={isos.refetch} testId="iso-list-error" />
      {isos.data?.length === 0 && <EmptyState title={t.isos.empty} hint={t.isos.emptyHint} testId="iso-list-empty" />}
      {sorted.length > 0 && (
        <div className="table iso-table" role="table" aria-label={t.isos.title}>
          <div className="table-head" role="row">
            {(['name', 'size', 'modified', 'usedBy'] as const).map((c) => (
              <span key={c} role="columnheader">{t.isos.columns[c]}</span>
            ))}
            <span role="columnheader" className="sr-only">{t.isos.columns.actions}</span>
          </div>
          {sorted.map((iso) => (
            <IsoRow key={iso.path} iso={iso} users={vms.data?.filter((v) => v.iso === iso.path) ?? []} />
          ))}
        </div>
      )}
    </section>
  );
}

function IsoRow({ iso, users }: { iso: Iso; users: Vm[] }) {
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const blocked = users.length > 0 ? t.isos.deleteLocked(users.map((v) => v.name).join(', ')) : null;
  return (
    <div className="table-row" role="row" data-testid={`iso-row-${iso.name}`}>
      <span role="cell" className="cell-name"><span className="vm-name" title={iso.path}>{iso.name}</span></span>
      <span role="cell" data-label={t.isos.columns.size} className="num">{formatBytes(iso.size)}</span>
      <span role="cell" data-label={t.isos.columns.modified}>{formatDateTime(iso.modifiedAt)}</span>
      <span role="cell" data-label={t.isos.columns.usedBy} className="cell-list">
        {users.length === 0 ? <span className="muted">{t.common.none}</span> : users.map((v) => <Link key={v.id} to={paths.vm(v.id)}>{v.name}</Link>)}
      </span>
      <span role="cell" className="cell-actions">
        <Button size="sm" variant="ghost" disabled={!!blocked} title={blocked ?? undefined} onClick={() => setConfirm(true)} data-testid="iso-delete">
          {t.common.delete}
        </Button>
        {blocked && <span className="muted small locked-inline">{blocked}</span>}
      </span>
      <ConfirmDialog
        open={confirm}
        title={t.isos.deleteTitle(iso.name)}
        body={<p>{t.isos.deleteBody}</p>}
        confirmLabel={t.isos.deleteConfirm}
        danger
        testId="delete-iso-dialog"
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          await isosApi.remove(iso.name);
          qc.setQueryData<Iso[]>(qk.isos, (old) => old?.filter((i) => i.name !== iso.name));
        }}
      />
    </div>
  );
}
