// The one shape of a dialog that starts a task and follows it: a form, Cancel and a submit button,
// the running task's bar and the refusal or failure in words. Locked (no Escape, no ×) while busy.
import type { FormEvent, ReactNode } from 'react';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { t } from '../../i18n';
import { TaskRunProgress, type TaskRun } from './useTaskRun';

export interface TaskDialogProps<A> {
  /** Prefix of the test ids: `<id>-dialog`, `<id>-form`, `<id>-submit` unless given below. */
  id: string;
  title: ReactNode;
  run: TaskRun<A>;
  /** Runs on submit (Enter or the button) unless `invalid`. */
  onSubmit: () => void;
  onClose: () => void;
  invalid?: boolean;
  submitLabel: string;
  busyLabel: string;
  /** The error shown at the bottom; `run.error` by default (pass null when a field shows it). */
  error?: unknown;
  /** Shown under the progress (e.g. links to what the task made). */
  after?: ReactNode;
  /** When the task has ended well and the dialog stays open: only a Close button. */
  finished?: boolean;
  testIds?: { dialog?: string; submit?: string; progress?: string; error?: string };
  children: ReactNode;
}

export function TaskDialog<A>({ id, title, run, onSubmit, onClose, invalid, submitLabel, busyLabel, error, after, finished, testIds = {}, children }: TaskDialogProps<A>) {
  const formId = `${id}-form`;
  const close = () => {
    run.reset();
    onClose();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!invalid && !run.busy && !finished) onSubmit();
  };
  return (
    <Dialog
      open
      onClose={close}
      title={title}
      testId={testIds.dialog ?? `${id}-dialog`}
      locked={run.busy}
      size="sm"
      footer={
        finished ? (
          <Button variant="primary" onClick={close} data-testid={`${id}-close`}>{t.common.close}</Button>
        ) : (
          <>
            <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
            <Button variant="primary" type="submit" form={formId} busy={run.busy} disabled={!!invalid} data-testid={testIds.submit ?? `${id}-submit`}>
              {run.busy ? busyLabel : submitLabel}
            </Button>
          </>
        )
      }
    >
      <form id={formId} className="form" onSubmit={submit} noValidate>
        {children}
        <TaskRunProgress task={run.task} testId={testIds.progress ?? `${id}-progress`} />
        <ErrorText error={error === undefined ? run.error : error} testId={testIds.error ?? `${id}-error`} />
        {after}
      </form>
    </Dialog>
  );
}
