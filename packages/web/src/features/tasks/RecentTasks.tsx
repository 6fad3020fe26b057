import { RECENT_TASKS_LIMIT, useTasks } from '../../api/queries';
import { ListStatus } from '../../components/ListStatus';
import { t } from '../../i18n';
import { TaskList } from './TaskList';

/** A VM's or a disk's latest tasks, as a card (VM page) or a plain block (disk details). */
export function RecentTasks({ vm, disk, variant = 'card' }: { vm?: string; disk?: string; variant?: 'card' | 'plain' }) {
  const tasks = useTasks({ vm, disk, limit: RECENT_TASKS_LIMIT });
  const body = (
    <>
      <ListStatus failed={tasks.isError} loading={tasks.isPending} error={tasks.error} failedText={t.tasks.loadFailed} retry={tasks.refetch} testId="recent-tasks-error" />
      {tasks.data?.length === 0 && <p className="muted" data-testid="recent-tasks-empty">{t.tasks.recentEmpty}</p>}
      {tasks.data && tasks.data.length > 0 && <TaskList tasks={tasks.data} compact testId="recent-tasks-list" />}
    </>
  );
  if (variant === 'plain') {
    return (
      <section className="recent-tasks" data-testid="recent-tasks">
        <h3>{t.tasks.recent}</h3>
        {body}
      </section>
    );
  }
  return (
    <section className="card recent-tasks" data-testid="recent-tasks">
      <h2>{t.tasks.recent}</h2>
      {body}
    </section>
  );
}
