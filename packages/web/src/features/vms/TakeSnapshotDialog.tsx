import { useState, type FormEvent } from 'react';
import type { Snapshot, Vm } from '@qemu-manager/contract';
import { snapshotsApi } from '../../api/endpoints';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { canIncludeMemory, snapshotNameError, suggestSnapshotName } from './snapshotTree';

const MAX_DESCRIPTION = 1024;

/** Name, description and (running only) memory. Mounted only while open; closes when the task succeeded. */
export function TakeSnapshotDialog({ vm, existing, onClose }: { vm: Vm; existing: Snapshot[] | undefined; onClose: () => void }) {
  const [name, setName] = useState(() => suggestSnapshotName(existing));
  const [description, setDescription] = useState('');
  const [memory, setMemory] = useState(false);
  const memoryAllowed = canIncludeMemory(vm.status);
  const run = useTaskRun(
    (body: { name: string; description?: string; includeMemory?: boolean }) => snapshotsApi.create(vm.id, body),
    () => onClose(),
  );
  // Once the task has made it, the list may already hold the new one: that is not "taken".
  const nameErr = snapshotNameError(name, run.task ? existing?.filter((s) => s.name !== name) : existing);
  const descErr = description.length > MAX_DESCRIPTION ? t.storage.descriptionTooLong : null;
  const close = () => {
    run.reset();
    onClose();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (nameErr || descErr) return;
    run.start({ name, ...(description ? { description } : {}), ...(memoryAllowed && memory ? { includeMemory: true } : {}) });
  };
  return (
    <Dialog
      open
      onClose={close}
      title={t.storage.takeTitle}
      testId="take-snapshot-dialog"
      locked={run.busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="take-snapshot-form" busy={run.busy} disabled={!!nameErr || !!descErr} data-testid="take-snapshot-submit">
            {run.busy ? t.storage.taking : t.storage.snapshotSubmit}
          </Button>
        </>
      }
    >
      <form id="take-snapshot-form" className="form" onSubmit={submit} noValidate>
        <Field label={t.storage.snapshotName} error={nameErr}>
          <input data-testid="take-snapshot-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={run.busy}
            onChange={(e) => { setName(e.target.value); run.reset(); }} />
        </Field>
        <Field label={t.storage.description} error={descErr}>
          <textarea data-testid="take-snapshot-description" value={description} rows={2} disabled={run.busy}
            onChange={(e) => { setDescription(e.target.value); run.reset(); }} />
        </Field>
        <label className="choice">
          <input type="checkbox" checked={memoryAllowed && memory} disabled={!memoryAllowed || run.busy} onChange={(e) => setMemory(e.target.checked)} data-testid="take-snapshot-memory" />
          <span className="choice-text">
            <span className="choice-title">{t.storage.includeMemory}</span>
            <span className="field-hint">{memoryAllowed ? t.storage.includeMemoryHint : t.storage.includeMemoryStopped}</span>
          </span>
        </label>
        <TaskRunProgress task={run.task} testId="take-snapshot-progress" />
        <ErrorText error={run.error} testId="take-snapshot-error" />
      </form>
    </Dialog>
  );
}
