import { useEffect, useRef } from 'react';
import { TASK_PANEL_LIMIT, useTasks } from '../../api/queries';
import { EmptyState } from '../../components/EmptyState';
import { ListStatus } from '../../components/ListStatus';
import { t } from '../../i18n';
import { TaskList } from './TaskList';
import { activeCount } from './taskWords';

/** The latest tasks of the whole server (the header count and the panel share this one query). */
export const useAllTasks = () => useTasks({ limit: TASK_PANEL_LIMIT });

/** Header button: opens the tasks panel and shows how many tasks wait or run. */
export function TasksButton({ open, onToggle }: { open: boolean; onToggle: () => void }) {
  const tasks = useAllTasks();
  const running = activeCount(tasks.data);
  return (
    <button
      type="button"
      className={`btn btn-ghost btn-sm tasks-button ${running > 0 ? 'has-running' : ''}`}
      onClick={onToggle}
      aria-expanded={open}
      aria-controls="tasks-panel"
      title={t.tasks.buttonTitle(running)}
      data-testid="tasks-open"
      data-running={running}
    >
      {running > 0 && <span className="spinner" aria-hidden="true" />}
      {t.tasks.button}
      {running > 0 && (
        <span className="count-badge" data-testid="tasks-running-count">
          {running}
        </span>
      )}
    </button>
  );
}

/** A drawer on the right with every recent task. Escape, the close button or a click outside closes it. */
export function TasksPanel({ open, onClose }: { open: boolean; onClose: () => void }) {
  if (!open) return null;
  return <PanelInner onClose={onClose} />;
}

function PanelInner({ onClose }: { onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const tasks = useAllTasks();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      id="tasks-panel"
      className="drawer"
      data-testid="tasks-panel"
      aria-labelledby="tasks-panel-title"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      onClick={(e) => {
        // The dialog element itself is only hit on its backdrop; a followed link leads to its
        // page (perhaps the one behind the panel): get out of the way in both cases.
        if (e.target === e.currentTarget || (e.target as Element).closest('a')) onClose();
      }}
    >
      <div className="drawer-inner">
        <header className="dialog-header">
          <h2 id="tasks-panel-title">{t.tasks.title}</h2>
          <button type="button" className="icon-button" aria-label={t.common.close} onClick={onClose} data-testid="tasks-close">
            ×
          </button>
        </header>
        <div className="drawer-body">
          <p className="muted small">{t.tasks.intro}</p>
          <ListStatus failed={tasks.isError} loading={tasks.isPending} error={tasks.error} failedText={t.tasks.loadFailed} retry={tasks.refetch} testId="tasks-error" />
          {tasks.data?.length === 0 && <EmptyState title={t.tasks.empty} hint={t.tasks.emptyHint} testId="tasks-empty" />}
          {tasks.data && tasks.data.length > 0 && <TaskList tasks={tasks.data} testId="tasks-list" />}
        </div>
      </div>
    </dialog>
  );
}
