// Start a task from a dialog and follow it to its end: the request's refusal (4xx) and the task's
// own failure are both shown in words next to the control that started it.
import { useEffect, useRef, useState } from 'react';
import { useMutation } from '@tanstack/react-query';
import { TASK_DONE, type Task } from '@qemu-manager/contract';
import { useTask } from '../../api/queries';
import { ProgressBar } from '../../components/ProgressBar';
import { t } from '../../i18n';
import { bytesLabel, describeKind, taskPercent } from './taskWords';

export interface TaskRun<A> {
  start: (args: A) => void;
  /** Follow a task started elsewhere (e.g. by a confirm dialog). */
  follow: (task: Task) => void;
  /** The task once the server accepted the request (live), or undefined. */
  task: Task | undefined;
  /** Request sent or task not yet ended. */
  busy: boolean;
  /** The refusal of the request, or the task's failure, in words; null otherwise. */
  error: unknown;
  succeeded: boolean;
  reset: () => void;
}

/** The id a task's result names under `key` (`{ vm: "<id>" }` or `{ vm: { id } }`), or null. */
export function resultId(task: Pick<Task, 'result'> | undefined, key: string): string | null {
  const v = task?.result?.[key];
  if (typeof v === 'string' && v) return v;
  if (v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string') return (v as { id: string }).id;
  return null;
}

/** What a finished task's failure says (null while it runs or when it succeeded). */
export function taskFailure(task: Pick<Task, 'status' | 'error'> | undefined): string | null {
  if (!task) return null;
  if (task.status === 'failed') return t.storage.taskFailed(task.error ?? t.errors.unexpected);
  if (task.status === 'cancelled') return t.storage.taskCancelled;
  return null;
}

/** `onSucceeded` runs once when the started task has succeeded (e.g. to close the dialog). */
export function useTaskRun<A = never>(perform?: (args: A) => Promise<Task>, onSucceeded?: (task: Task) => void): TaskRun<A> {
  const [started, setStarted] = useState<Task | null>(null);
  const mutation = useMutation({ mutationFn: (args: A) => (perform ? perform(args) : Promise.reject(new Error('nothing to start'))), onSuccess: (task) => setStarted(task) });
  const task = useTask(started);
  const ended = !!task && TASK_DONE.includes(task.status);
  const onDone = useRef(onSucceeded);
  onDone.current = onSucceeded;
  const reported = useRef<string | null>(null);
  useEffect(() => {
    if (task?.status === 'succeeded' && reported.current !== task.id) {
      reported.current = task.id;
      onDone.current?.(task);
    }
  }, [task]);
  return {
    start: (args) => {
      setStarted(null);
      mutation.mutate(args);
    },
    follow: (started) => {
      mutation.reset();
      setStarted(started);
    },
    task,
    busy: mutation.isPending || (!!task && !ended),
    error: mutation.error ?? taskFailure(task),
    succeeded: task?.status === 'succeeded',
    reset: () => {
      setStarted(null);
      mutation.reset();
    },
  };
}

/** A running task's bar and numbers, for inside a dialog. */
export function TaskRunProgress({ task, testId }: { task: Task | undefined; testId?: string }) {
  if (!task || TASK_DONE.includes(task.status)) return null;
  const bytes = bytesLabel(task);
  return (
    <div className="upload-progress" data-testid={testId} data-status={task.status}>
      <ProgressBar value={taskPercent(task)} label={t.tasks.progressLabel(describeKind(task.kind))} />
      <span className="muted small">{describeKind(task.kind)}{bytes && ` · ${bytes}`}</span>
    </div>
  );
}
