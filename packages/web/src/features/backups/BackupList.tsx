import { useState } from 'react';
import type { Backup, Vm } from '@qemu-manager/contract';
import { backupsApi } from '../../api/endpoints';
import { useRefreshBackups, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorText } from '../../components/ErrorText';
import { formatBytes, formatDateTime, formatExactTime, relativeTime } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { t } from '../../i18n';
import { Link, paths } from '../../router';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { deleteConsequence, kindLabel, sortBackups } from './backupRules';
import { RestoreBackupDialog } from './RestoreBackupDialog';

/** Backups newest first, each with restore, verify and delete. `all` gives the chains (parents, children). */
export function BackupList({ backups, all, showVm = false, testId }: { backups: readonly Backup[]; all: readonly Backup[] | undefined; showVm?: boolean; testId?: string }) {
  const vms = useVms();
  const now = useNow(30_000);
  return (
    <ul className="item-list backup-list" data-testid={testId}>
      {sortBackups(backups).map((b) => (
        <BackupItem key={b.id} backup={b} all={all ?? backups} vm={vms.data?.find((v) => v.id === b.vm)} vmsLoaded={!!vms.data} showVm={showVm} now={now} />
      ))}
    </ul>
  );
}

function BackupItem({ backup: b, all, vm, vmsLoaded, showVm, now }: { backup: Backup; all: readonly Backup[]; vm: Vm | undefined; vmsLoaded: boolean; showVm: boolean; now: number }) {
  const [restoring, setRestoring] = useState(false);
  const [deleting, setDeleting] = useState(false);
  // Verify and delete are tasks: the row follows them, and shows the refusal or failure in words.
  const refresh = useRefreshBackups();
  const run = useTaskRun((id: string) => backupsApi.verify(id), refresh);
  const date = formatDateTime(b.createdAt);
  const details = [
    kindLabel(b, all),
    formatBytes(b.sizeBytes),
    t.backups.target + ': ' + b.target,
    b.frozen ? t.backups.frozen : null,
  ].filter(Boolean).join(' · ');
  return (
    <li className="item backup-item" data-testid={`backup-${b.id}`} data-kind={b.kind} data-state={b.state} data-parent={b.parent ?? ''}>
      <div className="item-main">
        <span className="item-title">
          <span data-testid="backup-date" title={formatExactTime(b.createdAt)}>{date}</span>
          {showVm && (
            <span className="backup-vm" data-testid="backup-vm">
              {' · '}
              {vm || !vmsLoaded ? <Link to={paths.vm(b.vm)}>{b.vmName}</Link> : <span className="muted">{b.vmName}</span>}
            </span>
          )}
          <span className={`badge badge-backup-${b.state}`} title={t.backups.stateTitles[b.state]} data-testid="backup-state">
            <span className="dot" aria-hidden="true" />
            {t.backups.states[b.state]}
          </span>
        </span>
        <span className="muted small" data-testid="backup-details">{details}</span>
        <span className="muted small" data-testid="backup-verified" title={b.verifiedAt ? formatExactTime(b.verifiedAt) : undefined}>
          {t.backups.columns.verified}: {b.verifiedAt ? relativeTime(b.verifiedAt, now, t.time) : t.backups.notVerified}
        </span>
        <TaskRunProgress task={run.task} testId="backup-task-progress" />
        <ErrorText error={run.error} testId="backup-action-error" onDismiss={run.reset} />
      </div>
      <div className="vm-actions-buttons">
        <Button size="sm" disabled={run.busy} onClick={() => { run.reset(); setRestoring(true); }} data-testid="backup-restore">{t.backups.restore}</Button>
        <Button size="sm" variant="ghost" busy={run.busy && run.task?.kind !== 'backup.delete'} disabled={run.busy} title={t.backups.verifyHint}
          onClick={() => run.start(b.id)} data-testid="backup-verify">{t.backups.verify}</Button>
        <Button size="sm" variant="ghost" disabled={run.busy} onClick={() => { run.reset(); setDeleting(true); }} data-testid="backup-delete">{t.common.delete}</Button>
      </div>
      {restoring && <RestoreBackupDialog backup={b} vm={vm} onClose={() => setRestoring(false)} />}
      <ConfirmDialog
        open={deleting}
        title={t.backups.deleteTitle(date)}
        body={<p data-testid="delete-backup-consequence">{deleteConsequence(b, all)}</p>}
        confirmLabel={t.backups.deleteConfirm}
        danger
        testId="delete-backup-dialog"
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          // The request's refusal stays in the dialog; a task failure shows in the row.
          run.follow(await backupsApi.remove(b.id));
        }}
      />
    </li>
  );
}
