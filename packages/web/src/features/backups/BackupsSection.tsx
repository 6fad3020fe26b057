import { useState } from 'react';
import type { Vm } from '@qemu-manager/contract';
import { BACKUP_TASK_KINDS, RECENT_TASKS_LIMIT, useBackupFailure, useBackups, useTasks } from '../../api/queries';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { ListStatus } from '../../components/ListStatus';
import { ProgressBar } from '../../components/ProgressBar';
import { formatDateTime } from '../../lib/format';
import { t } from '../../i18n';
import { bytesLabel, describeKind, isActive, taskPercent } from '../tasks/taskWords';
import { BackupList } from './BackupList';
import { BackupNowDialog } from './BackupNowDialog';
import { lastBackupFailure } from './backupRules';

/** A VM's backups (newest first) with back up now, restore, verify and delete; running backup tasks with their bars. */
export function BackupsSection({ vm }: { vm: Vm }) {
  const backups = useBackups({ vm: vm.id });
  // The same list as the VM's "Recent tasks" (one request, kept live by task events).
  const tasks = useTasks({ vm: vm.id, limit: RECENT_TASKS_LIMIT });
  const failureEvent = useBackupFailure(vm.id).data;
  const failure = lastBackupFailure(tasks.data, vm.id, failureEvent);
  const running = (tasks.data ?? []).filter((x) => isActive(x) && BACKUP_TASK_KINDS.includes(x.kind));
  const [open, setOpen] = useState(false);
  return (
    <section className="card" data-testid="vm-backups">
      <div className="card-header">
        <h2>{t.backups.section}</h2>
        <div className="card-actions">
          <Button size="sm" disabled={vm.status === 'starting' || vm.status === 'stopping'} onClick={() => setOpen(true)} data-testid="backup-now-open">{t.backups.backUpNow}</Button>
        </div>
      </div>
      {running.map((task) => (
        <div key={task.id} className="upload-progress" data-testid="backup-running" data-kind={task.kind}>
          <ProgressBar value={taskPercent(task)} label={t.tasks.progressLabel(describeKind(task.kind))} />
          <span className="muted small">{describeKind(task.kind)}{bytesLabel(task) && ` · ${bytesLabel(task)}`}</span>
        </div>
      ))}
      {failure && <ErrorText error={t.backups.lastFailed(formatDateTime(failure.at), failure.error)} testId="backup-last-failed" />}
      <ListStatus failed={backups.isError} loading={backups.isPending} error={backups.error} failedText={t.backups.loadFailed} retry={backups.refetch} testId="backups-error" />
      {backups.data?.length === 0 && (
        <>
          <p className="muted" data-testid="backups-empty">{t.backups.empty}</p>
          <p className="muted small">{t.backups.emptyHint}</p>
        </>
      )}
      {backups.data && backups.data.length > 0 && <BackupList backups={backups.data} all={backups.data} testId="vm-backup-list" />}
      {open && <BackupNowDialog vm={vm} onClose={() => setOpen(false)} />}
    </section>
  );
}
