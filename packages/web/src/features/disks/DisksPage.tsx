import { useEffect, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Disk } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { removeDisk, useDiskInfo, useDisks, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { EmptyState } from '../../components/EmptyState';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { ProgressBar } from '../../components/ProgressBar';
import { DiskStatusBadge } from '../../components/StatusBadge';
import { formatBytes } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { useAllTasks } from '../tasks/TasksPanel';
import { activeTaskFor, bytesLabel, describeKind, taskPercent } from '../tasks/taskWords';
import { CreateDiskDialog } from './CreateDiskDialog';
import { DiskInfoDialog } from './DiskInfoDialog';
import { canDeleteDisk, deleteDiskBlockedReason } from './diskRules';
import { CloneDiskDialog } from './CloneDiskDialog';
import { ConvertDiskDialog } from './ConvertDiskDialog';
import { revealDisk } from './DiskLinks';
import { ImportDiskDialog } from './ImportDiskDialog';
import { diskAnchor } from './importRules';
import { ResizeDiskDialog } from './ResizeDiskDialog';
import { chainLabel, diskChain } from './storageRules';
import { UploadDisk } from './UploadDisk';

export function DisksPage() {
  const disks = useDisks();
  useTitle(t.disks.title);
  const [creating, setCreating] = useState(false);
  const [importing, setImporting] = useState(false);
  // Arriving at /disks#disk-<id> (a link to a disk): show that row once the list has it.
  const loaded = !!disks.data;
  useEffect(() => {
    const id = location.hash.startsWith('#disk-') ? location.hash.slice('#disk-'.length) : '';
    if (loaded && id) revealDisk(decodeURIComponent(id));
  }, [loaded]);
  const sorted = disks.data ? [...disks.data].sort((a, b) => a.name.localeCompare(b.name)) : [];
  return (
    <section className="page" data-testid="disks-page">
      <PageHeader
        title={t.disks.title}
        action={
          <div className="page-actions">
            <Button onClick={() => setImporting(true)} data-testid="import-disk-open">{t.importDisk.open}</Button>
            <Button variant="primary" onClick={() => setCreating(true)} data-testid="create-disk-open">{t.disks.create}</Button>
          </div>
        }
      />
      <ListStatus failed={disks.isError} loading={disks.isPending} error={disks.error} failedText={t.disks.loadFailed} retry={disks.refetch} testId="disk-list-error" />
      {disks.data?.length === 0 && <EmptyState title={t.disks.empty} hint={t.disks.emptyHint} testId="disk-list-empty" />}
      {sorted.length > 0 && (
        <div className="table disk-table" role="table" aria-label={t.disks.title}>
          <div className="table-head" role="row">
            {(['name', 'format', 'size', 'actual', 'attached', 'status'] as const).map((c) => (
              <span key={c} role="columnheader">{t.disks.columns[c]}</span>
            ))}
            <span role="columnheader" className="sr-only">{t.disks.columns.actions}</span>
          </div>
          {sorted.map((d) => <DiskRow key={d.id} disk={d} all={disks.data} />)}
        </div>
      )}
      <UploadDisk existing={disks.data} />
      <CreateDiskDialog open={creating} onClose={() => setCreating(false)} />
      {importing && <ImportDiskDialog onClose={() => setImporting(false)} />}
    </section>
  );
}

function DiskRow({ disk, all }: { disk: Disk; all: Disk[] | undefined }) {
  const qc = useQueryClient();
  const vms = useVms();
  const detail = useDiskInfo(disk);
  const info = disk.info ?? detail.data?.info;
  const [showInfo, setShowInfo] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [resizing, setResizing] = useState(false);
  const [cloning, setCloning] = useState(false);
  const [converting, setConverting] = useState(false);
  const chain = chainLabel(diskChain(disk, all));
  // The running task on this disk (creation, resize, ...) from the list the header keeps live.
  const task = activeTaskFor(useAllTasks().data, { disk: disk.id });
  const owner = disk.attachedTo ? vms.data?.find((v) => v.id === disk.attachedTo) : undefined;
  const blocked = deleteDiskBlockedReason(disk, vms.data);

  return (
    <div className="table-row disk-row" role="row" id={diskAnchor(disk.id)} tabIndex={-1} data-testid={`disk-row-${disk.name}`} data-status={disk.status}>
      <span role="cell" className="cell-name">
        <span className="vm-name" title={disk.path}>{disk.name}</span>
        {chain && <span className="muted small disk-chain" data-testid={`disk-chain-${disk.name}`}>{chain}</span>}
      </span>
      <span role="cell" data-label={t.disks.columns.format}>{info?.format ?? disk.format}</span>
      <span role="cell" data-label={t.disks.columns.size} className="num">
        {info ? formatBytes(info['virtual-size']) : t.units.gb(disk.size)}
      </span>
      <span role="cell" data-label={t.disks.columns.actual} className="num">
        {info?.['actual-size'] != null ? formatBytes(info['actual-size']) : t.common.none}
      </span>
      <span role="cell" data-label={t.disks.columns.attached}>
        {disk.attachedTo ? (
          owner ? <Link to={paths.vm(owner.id)} data-testid={`disk-owner-${disk.name}`}>{owner.name}</Link> : t.disks.unknownVm
        ) : (
          <span className="muted">{t.disks.notAttached}</span>
        )}
      </span>
      <span role="cell" data-label={t.disks.columns.status} className="cell-status">
        <DiskStatusBadge status={disk.status} testId={`disk-status-${disk.name}`} />
        {task ? (
          <span className="disk-task" data-testid={`disk-task-${disk.name}`} data-kind={task.kind}>
            <span className="small muted">{describeKind(task.kind)}{bytesLabel(task) && ` · ${bytesLabel(task)}`}</span>
            <ProgressBar value={taskPercent(task)} label={t.tasks.progressLabel(describeKind(task.kind))} />
          </span>
        ) : (
          disk.status === 'creating' && <ProgressBar label={t.diskStatus.creating} />
        )}
        {disk.status === 'error' && disk.error && <span className="field-error" data-testid={`disk-error-${disk.name}`}>{disk.error}</span>}
      </span>
      <span role="cell" className="cell-actions">
        <div className="vm-actions-buttons">
          <Button size="sm" variant="ghost" onClick={() => setShowInfo(true)} data-testid="disk-info">{t.disks.info}</Button>
          <Button size="sm" variant="ghost" disabled={disk.status !== 'ready'} onClick={() => setResizing(true)} data-testid="disk-resize">{t.storage.resize}</Button>
          <Button size="sm" variant="ghost" disabled={disk.status !== 'ready'} onClick={() => setCloning(true)} data-testid="disk-clone">{t.storage.clone}</Button>
          <Button size="sm" variant="ghost" disabled={disk.status !== 'ready'} onClick={() => setConverting(true)} data-testid="disk-convert">{t.convertDisk.open}</Button>
          <Button size="sm" variant="ghost" disabled={!canDeleteDisk(disk)} title={blocked ?? undefined} onClick={() => setConfirm(true)} data-testid="disk-delete">
            {t.common.delete}
          </Button>
        </div>
        {blocked && disk.attachedTo && <span className="muted small locked-inline">{blocked}</span>}
      </span>
      <DiskInfoDialog open={showInfo} disk={disk} onClose={() => setShowInfo(false)} />
      {resizing && <ResizeDiskDialog disk={disk} virtualSize={info?.['virtual-size']} running={!!owner && owner.status !== 'stopped'} onClose={() => setResizing(false)} />}
      {converting && <ConvertDiskDialog disk={disk} ownerActive={!!owner && owner.status !== 'stopped'} onClose={() => setConverting(false)} />}
      {cloning && <CloneDiskDialog disk={disk} ownerActive={!!owner && owner.status !== 'stopped'} onClose={() => setCloning(false)} />}
      <ConfirmDialog
        open={confirm}
        title={t.disks.deleteTitle(disk.name)}
        body={<p>{t.disks.deleteBody}</p>}
        confirmLabel={t.disks.deleteConfirm}
        danger
        testId="delete-disk-dialog"
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          await disksApi.remove(disk.id);
          removeDisk(qc, disk.id);
        }}
      />
    </div>
  );
}
