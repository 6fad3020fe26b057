import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { BackupSchedule, Retention } from '@qemu-manager/contract';
import { backupSchedulesApi } from '../../api/endpoints';
import { qk, useBackupSchedules, useRefreshBackups, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorText } from '../../components/ErrorText';
import { ListStatus } from '../../components/ListStatus';
import { formatExactTime, relativeTime } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { RETENTION_RULES } from './backupRules';
import { ScheduleDialog } from './ScheduleDialog';

/** Schedules with their last run; create, edit, enable/disable, run now, delete. */
export function SchedulesCard() {
  const schedules = useBackupSchedules();
  const [editing, setEditing] = useState<BackupSchedule | 'new' | null>(null);
  return (
    <section className="card" data-testid="backup-schedules">
      <div className="card-header">
        <h2>{t.backups.schedules}</h2>
        <div className="card-actions">
          <Button size="sm" onClick={() => setEditing('new')} data-testid="schedule-new">{t.backups.newSchedule}</Button>
        </div>
      </div>
      <ListStatus failed={schedules.isError} loading={schedules.isPending} error={schedules.error} failedText={t.backups.schedulesLoadFailed} retry={schedules.refetch} testId="schedules-error" />
      {schedules.data?.length === 0 && (
        <>
          <p className="muted" data-testid="schedules-empty">{t.backups.schedulesEmpty}</p>
          <p className="muted small">{t.backups.schedulesHint}</p>
        </>
      )}
      {schedules.data && schedules.data.length > 0 && (
        <ul className="item-list backup-meta-list" data-testid="schedule-list">
          {[...schedules.data].sort((a, b) => a.name.localeCompare(b.name)).map((s) => <ScheduleItem key={s.id} schedule={s} onEdit={() => setEditing(s)} />)}
        </ul>
      )}
      {editing && <ScheduleDialog schedule={editing === 'new' ? null : editing} all={schedules.data} onClose={() => setEditing(null)} />}
    </section>
  );
}

export function retentionSummary(r: Retention): string {
  const parts = RETENTION_RULES.filter((rule) => r[rule] !== undefined).map((rule) => `${t.backups.rules[rule]} ${r[rule]}`);
  return parts.length ? parts.join(', ') : t.backups.keepAll;
}

function ScheduleItem({ schedule: s, onEdit }: { schedule: BackupSchedule; onEdit: () => void }) {
  const qc = useQueryClient();
  const vms = useVms();
  const now = useNow(30_000);
  const [deleting, setDeleting] = useState(false);
  const run = useTaskRun((_: null) => backupSchedulesApi.run(s.id), useRefreshBackups());
  const toggle = useMutation({
    mutationFn: () => backupSchedulesApi.update(s.id, { enabled: !s.enabled }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: qk.backupSchedules }),
  });
  const every = s.every === 'hourly' || s.every === 'daily' || s.every === 'weekly' ? t.backups.everyChoices[s.every] : s.every;
  const who = s.vms === 'all' ? t.backups.scheduleVmsAll : s.vms.map((id) => vms.data?.find((v) => v.id === id)?.name ?? t.backups.unknownVm(id)).join(', ');
  return (
    <li className="item" data-testid={`schedule-${s.name}`} data-enabled={s.enabled}>
      <div className="item-main">
        <span className="item-title">
          {s.name}
          {!s.enabled && <span className="badge" data-testid="schedule-disabled">{t.backups.disabled}</span>}
          {s.lastStatus && (
            <span className={`badge badge-task-${s.lastStatus}`} data-testid="schedule-last-status" data-status={s.lastStatus}>
              <span className="dot" aria-hidden="true" />
              {t.backups.lastStatus[s.lastStatus]}
            </span>
          )}
        </span>
        <span className="muted small">{t.backups.scheduleSummary(every, s.at)} · {who} · {t.backups.target}: {s.target}</span>
        <span className="muted small">{t.backups.retention}: {retentionSummary(s.retention)}</span>
        <span className="muted small" data-testid="schedule-runs">
          {s.lastRunAt ? <span title={formatExactTime(s.lastRunAt)}>{t.backups.lastRun(relativeTime(s.lastRunAt, now, t.time))}</span> : t.backups.neverRun}
          {s.enabled && s.nextRunAt && <> · <span title={formatExactTime(s.nextRunAt)}>{t.backups.nextRun(relativeTime(s.nextRunAt, now, t.time))}</span></>}
        </span>
        <TaskRunProgress task={run.task} testId="schedule-run-progress" />
        <ErrorText error={run.error} testId="schedule-run-error" onDismiss={run.reset} />
        <ErrorText error={toggle.error} testId="schedule-toggle-error" onDismiss={toggle.reset} />
      </div>
      <div className="vm-actions-buttons">
        <Button size="sm" busy={run.busy} onClick={() => run.start(null)} data-testid="schedule-run">{t.backups.runNow}</Button>
        <Button size="sm" variant="ghost" busy={toggle.isPending} onClick={() => toggle.mutate()} data-testid="schedule-toggle">{s.enabled ? t.backups.disable : t.backups.enable}</Button>
        <Button size="sm" variant="ghost" onClick={onEdit} data-testid="schedule-edit">{t.backups.editSchedule}</Button>
        <Button size="sm" variant="ghost" onClick={() => setDeleting(true)} data-testid="schedule-delete">{t.common.delete}</Button>
      </div>
      <ConfirmDialog
        open={deleting}
        title={t.backups.deleteScheduleTitle(s.name)}
        body={<p>{t.backups.deleteScheduleBody}</p>}
        confirmLabel={t.backups.deleteScheduleConfirm}
        danger
        testId="delete-schedule-dialog"
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          await backupSchedulesApi.remove(s.id);
          await qc.invalidateQueries({ queryKey: qk.backupSchedules });
        }}
      />
    </li>
  );
}
