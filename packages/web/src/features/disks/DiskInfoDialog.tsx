import { useQuery } from '@tanstack/react-query';
import type { Disk } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { qk, useDisks } from '../../api/queries';
import { Button } from '../../components/Button';
import { CopyButton } from '../../components/CopyButton';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { formatBytes, formatDateTime } from '../../lib/format';
import { locale, t } from '../../i18n';
import { RecentTasks } from '../tasks/RecentTasks';
import { diskChain } from './storageRules';

export function DiskInfoDialog({ open, disk, onClose }: { open: boolean; disk: Disk; onClose: () => void }) {
  const detail = useQuery({ queryKey: qk.disk(disk.id), queryFn: ({ signal }) => disksApi.get(disk.id, signal), enabled: open });
  const d = detail.data ?? disk;
  const chain = diskChain(d, useDisks().data);
  const info = d.info;
  const extra = info ? Object.entries(info).filter(([k]) => !['virtual-size', 'actual-size', 'filename', 'format'].includes(k)) : [];
  return (
    <Dialog open={open} onClose={onClose} title={t.disks.infoTitle(disk.name)} testId="disk-info-dialog" footer={<Button onClick={onClose}>{t.common.close}</Button>}>
      <dl className="props">
        <dt>{t.disks.path}</dt>
        <dd className="mono break">{d.path} <CopyButton text={d.path} /></dd>
        <dt>{t.disks.format}</dt>
        <dd>{info?.format ?? d.format}</dd>
        <dt>{t.disks.virtualSize}</dt>
        <dd data-testid="disk-info-virtual">{info ? `${formatBytes(info['virtual-size'])} (${info['virtual-size'].toLocaleString(locale())} B)` : t.units.gb(d.size)}</dd>
        <dt>{t.disks.actualSize}</dt>
        <dd data-testid="disk-info-actual">{info?.['actual-size'] != null ? formatBytes(info['actual-size']) : t.common.none}</dd>
        {chain.backsOnto && (
          <>
            <dt>{t.storage.backsOnto}</dt>
            <dd data-testid="disk-info-backs-onto" title={d.backingFile ?? undefined}>{chain.backsOnto.name}</dd>
          </>
        )}
        {chain.baseOf.length > 0 && (
          <>
            <dt>{t.storage.baseOf}</dt>
            <dd data-testid="disk-info-base-of">{chain.baseOf.map((c) => c.name).join(', ')}</dd>
          </>
        )}
        <dt>{t.disks.createdAt}</dt>
        <dd>{formatDateTime(d.createdAt)}</dd>
        <dt>{t.disks.completedAt}</dt>
        <dd>{formatDateTime(d.createdAtCompleted)}</dd>
        {extra.map(([k, v]) => (
          <FragmentRow key={k} k={k} v={v} />
        ))}
      </dl>
      {detail.isPending && open && d.status === 'ready' && <p className="muted small">{t.app.loading}</p>}
      <ErrorText error={detail.error} />
      {d.status === 'error' && <ErrorText error={d.error} />}
      <RecentTasks disk={disk.id} variant="plain" />
    </Dialog>
  );
}

function FragmentRow({ k, v }: { k: string; v: unknown }) {
  if (v === null || typeof v === 'object') return null;
  return (
    <>
      <dt className="mono">{k}</dt>
      <dd className="mono">{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
    </>
  );
}
