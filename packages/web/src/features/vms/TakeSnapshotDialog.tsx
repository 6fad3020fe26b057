import { useState } from 'react';
import type { Snapshot, Vm } from '@qemu-manager/contract';
import { snapshotsApi } from '../../api/endpoints';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskDialog } from '../tasks/TaskDialog';
import { useTaskRun } from '../tasks/useTaskRun';
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
  return (
    <TaskDialog
      id="take-snapshot"
      title={t.storage.takeTitle}
      run={run}
      invalid={!!nameErr || !!descErr}
      onSubmit={() => run.start({ name, ...(description ? { description } : {}), ...(memoryAllowed && memory ? { includeMemory: true } : {}) })}
      onClose={onClose}
      submitLabel={t.storage.snapshotSubmit}
      busyLabel={t.storage.taking}
    >
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
    </TaskDialog>
  );
}
