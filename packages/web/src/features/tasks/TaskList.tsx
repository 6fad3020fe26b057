import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Task } from '@qemu-manager/contract';
import { errorMessage } from '../../api/client';
import { tasksApi } from '../../api/endpoints';
import { upsertTask, useDisks, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { ProgressBar } from '../../components/ProgressBar';
import { formatExactTime } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { t } from '../../i18n';
import { Link } from '../../router';
import { bytesLabel, describeKind, describeStatus, describeTarget, isActive, taskPercent, timeLabel } from './taskWords';

/** A list of tasks, newest first, each with its progress and (while it runs) a Cancel button. */
export function TaskList({ tasks, testId, compact = false }: { tasks: readonly Task[]; testId?: string; compact?: boolean }) {
  const vms = useVms();
  const disks = useDisks();
  const now = useNow(10_000);
  return (
    <ul className={`item-list task-list ${compact ? 'is-compact' : ''}`} data-testid={testId}>
      {tasks.map((task) => (
        <TaskItem key={task.id} task={task} now={now} vms={vms.data} disks={disks.data} showTarget={!compact} />
      ))}
    </ul>
  );
}

interface ItemProps {
  task: Task;
  now: number;
  vms: Parameters<typeof describeTarget>[1];
  disks: Parameters<typeof describeTarget>[2];
  /** In a VM's or disk's own section the target is obvious, unless the task names both. */
  showTarget?: boolean;
}

export function TaskItem({ task, now, vms, disks, showTarget = true }: ItemProps) {
  const qc = useQueryClient();
  const [cancelling, setCancelling] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const kind = describeKind(task.kind);
  const targets = describeTarget(task, vms, disks);
  const value = taskPercent(task);
  const bytes = bytesLabel(task);
  const active = isActive(task);
  // Where it stands while it runs, and where it stopped when it failed; a finished one needs no bar.
  const showBar = active || task.status === 'failed';
  const cancel = async () => {
    setCancelling(true);
    setError(null);
    try {
      upsertTask(qc, await tasksApi.cancel(task.id));
    } catch (err) {
      setError(t.tasks.cancelFailed(errorMessage(err)));
    } finally {
      setCancelling(false);
    }
  };
  return (
    <li className="item task-item" data-testid={`task-${task.id}`} data-kind={task.kind} data-status={task.status}>
      <div className="item-main">
        <div className="task-line">
          <span className="item-title" data-testid="task-kind">{kind}</span>
          <span className={`badge badge-task-${task.status}`} data-testid="task-status" data-status={task.status}>
            <span className="dot" aria-hidden="true" />
            {describeStatus(task.status)}
          </span>
        </div>
        {(showTarget || targets.length > 1) && targets.length > 0 && (
          <span className="task-target small" data-testid="task-target">
            {targets.map((p, i) => (
              <span key={p.kind}>
                {i > 0 && ' · '}
                {p.href ? <Link to={p.href}>{p.label}</Link> : <span className="muted">{p.label}</span>}
              </span>
            ))}
          </span>
        )}
        {showTarget && targets.length === 0 && <span className="task-target small muted">{t.tasks.noTarget}</span>}
        {showBar && (
          <div className="task-progress">
            <ProgressBar value={value} label={t.tasks.progressLabel(kind)} testId="task-progress" />
            <span className="small muted num" data-testid="task-progress-text">
              {value !== undefined && t.tasks.progress(value)}
              {value !== undefined && bytes && ' · '}
              {bytes}
            </span>
          </div>
        )}
        {!showBar && bytes && <span className="small muted num" data-testid="task-progress-text">{bytes}</span>}
        <span className="small muted" data-testid="task-time" title={formatExactTime(task.startedAt ?? task.createdAt)}>
          {timeLabel(task, now)}
        </span>
        {task.error && <span className="field-error" data-testid="task-error">{task.error}</span>}
        <ErrorText error={error} onDismiss={() => setError(null)} testId="task-cancel-error" />
      </div>
      {active && (
        <Button size="sm" variant="ghost" busy={cancelling} onClick={() => void cancel()} data-testid="task-cancel">
          {t.tasks.cancel}
        </Button>
      )}
    </li>
  );
}
