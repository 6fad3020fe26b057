import { useState } from 'react';
import type { Snapshot, Vm } from '@qemu-manager/contract';
import { snapshotsApi } from '../../api/endpoints';
import { useSnapshots } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ListStatus } from '../../components/ListStatus';
import { formatBytes, formatDateTime } from '../../lib/format';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { ErrorText } from '../../components/ErrorText';
import { buildSnapshotTree, flattenTree, revertBlockedReason } from './snapshotTree';
import { TakeSnapshotDialog } from './TakeSnapshotDialog';

/** A VM's snapshots as a tree (current marked), with take, revert and delete. */
export function SnapshotsSection({ vm }: { vm: Vm }) {
  const snaps = useSnapshots(vm.id);
  const [taking, setTaking] = useState(false);
  const [confirm, setConfirm] = useState<{ action: 'revert' | 'delete'; snapshot: Snapshot } | null>(null);
  // Revert and delete are tasks: the confirm dialog closes once accepted, the section follows the task.
  const run = useTaskRun();
  const rows = snaps.data ? flattenTree(buildSnapshotTree(snaps.data)) : [];
  const transitional = vm.status === 'starting' || vm.status === 'stopping';

  return (
    <section className="card" data-testid="vm-snapshots">
      <div className="card-header">
        <h2>{t.storage.snapshots}</h2>
        <div className="card-actions">
          <Button size="sm" disabled={transitional || run.busy} onClick={() => setTaking(true)} data-testid="snapshot-take-open">{t.storage.takeSnapshot}</Button>
        </div>
      </div>
      <ListStatus failed={snaps.isError} loading={snaps.isPending} error={snaps.error} failedText={t.storage.snapshotsLoadFailed} retry={snaps.refetch} testId="snapshots-error" />
      {snaps.data?.length === 0 && (
        <>
          <p className="muted" data-testid="snapshots-empty">{t.storage.snapshotsEmpty}</p>
          <p className="muted small">{t.storage.snapshotsHint}</p>
        </>
      )}
      {rows.length > 0 && (
        <ul className="item-list snapshot-tree" data-testid="snapshot-tree">
          {rows.map(({ snapshot: s, depth }) => (
            <li key={s.name} className={`item snapshot ${s.current ? 'is-current' : ''}`} style={{ paddingLeft: `${0.75 + depth * 1.25}rem` }}
              data-testid={`snapshot-${s.name}`} data-depth={depth} data-current={s.current} data-parent={s.parent ?? ''}>
              <div className="item-main">
                <span className="item-title">
                  {depth > 0 && <span className="muted" aria-hidden="true">└ </span>}
                  {s.name}
                  {s.current && <span className="badge badge-ok snapshot-current" title={t.storage.currentTitle} data-testid="snapshot-current">{t.storage.current}</span>}
                </span>
                <span className="muted small">
                  {[formatDateTime(s.createdAt), s.vmState ? `${t.storage.withMemory} (${t.storage.memorySize(formatBytes(s.sizeBytes))})` : null, s.description || null]
                    .filter(Boolean)
                    .join(' · ')}
                </span>
              </div>
              <div className="vm-actions-buttons">
                <Button size="sm" disabled={run.busy || transitional} title={revertBlockedReason(s, vm.status) ?? undefined}
                  onClick={() => { run.reset(); setConfirm({ action: 'revert', snapshot: s }); }} data-testid="snapshot-revert">{t.storage.revert}</Button>
                <Button size="sm" variant="ghost" disabled={run.busy || transitional}
                  onClick={() => { run.reset(); setConfirm({ action: 'delete', snapshot: s }); }} data-testid="snapshot-delete">{t.common.delete}</Button>
              </div>
            </li>
          ))}
        </ul>
      )}
      <TaskRunProgress task={run.task} testId="snapshot-task-progress" />
      <ErrorText error={run.error} testId="snapshot-action-error" onDismiss={run.reset} />
      {taking && <TakeSnapshotDialog vm={vm} existing={snaps.data} onClose={() => setTaking(false)} />}
      {confirm && (
        <ConfirmDialog
          open
          title={confirm.action === 'revert' ? t.storage.revertTitle(confirm.snapshot.name) : t.storage.deleteTitle(confirm.snapshot.name)}
          body={
            confirm.action === 'revert' ? (
              <>
                <p>{t.storage.revertBody}</p>
                {vm.status !== 'stopped' && <p className={revertBlockedReason(confirm.snapshot, vm.status) ? 'warn-text' : 'muted'}>
                  {revertBlockedReason(confirm.snapshot, vm.status) ?? t.storage.revertRunningMemory}
                </p>}
              </>
            ) : (
              <p>{t.storage.deleteBody}</p>
            )
          }
          confirmLabel={confirm.action === 'revert' ? t.storage.revertConfirm : t.storage.deleteConfirm}
          danger
          testId={confirm.action === 'revert' ? 'revert-snapshot-dialog' : 'delete-snapshot-dialog'}
          onClose={() => setConfirm(null)}
          onConfirm={async () => {
            // The request's refusal stays in the dialog; a task failure shows in the section.
            const task = await (confirm.action === 'revert' ? snapshotsApi.revert : snapshotsApi.remove)(vm.id, confirm.snapshot.name);
            run.follow(task);
          }}
        />
      )}
    </section>
  );
}
