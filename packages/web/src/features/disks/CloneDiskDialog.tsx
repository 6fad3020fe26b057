import { useState, type FormEvent } from 'react';
import type { CloneMode, Disk } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { useDisks } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { resultId, TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { CloneModeField } from './CloneModeField';
import { newDiskNameError, suggestCloneName } from './storageRules';

/** Copy a disk, fully or as a linked qcow2 overlay. Mounted only while open. */
export function CloneDiskDialog({ disk, ownerActive, onClose }: { disk: Disk; ownerActive: boolean; onClose: () => void }) {
  const disks = useDisks();
  const [name, setName] = useState(() => suggestCloneName(disk.name, (disks.data ?? []).map((d) => d.name)));
  const [mode, setMode] = useState<CloneMode>(disk.format === 'qcow2' ? 'linked' : 'full');
  const run = useTaskRun((body: { name: string; mode: CloneMode }) => disksApi.clone(disk.id, body), () => onClose());
  // The copy's own entry may already be listed (disk.created) while the task ends: not "taken".
  const made = resultId(run.task, 'disk');
  const nameErr = newDiskNameError(name, disks.data?.filter((d) => d.id !== made));
  const close = () => {
    run.reset();
    onClose();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!nameErr) run.start({ name, mode });
  };
  return (
    <Dialog
      open
      onClose={close}
      title={t.storage.cloneTitle(disk.name)}
      testId="clone-disk-dialog"
      locked={run.busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="clone-disk-form" busy={run.busy} disabled={!!nameErr} data-testid="clone-disk-submit">
            {run.busy ? t.storage.cloning : t.storage.cloneSubmit}
          </Button>
        </>
      }
    >
      <form id="clone-disk-form" className="form" onSubmit={submit} noValidate>
        <Field label={t.storage.cloneName} error={nameErr}>
          <input data-testid="clone-disk-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={run.busy}
            onChange={(e) => { setName(e.target.value); run.reset(); }} />
        </Field>
        <CloneModeField value={mode} onChange={(m) => { setMode(m); run.reset(); }} hints={t.storage.modeHints} disabled={run.busy} testId="clone-disk-mode" />
        {ownerActive && <p className="locked-reason">{t.storage.cloneNotStopped}</p>}
        <TaskRunProgress task={run.task} testId="clone-disk-progress" />
        <ErrorText error={run.error} testId="clone-disk-error" />
      </form>
    </Dialog>
  );
}
