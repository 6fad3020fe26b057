import { useState } from 'react';
import type { CloneMode, Disk } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { useDisks } from '../../api/queries';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskDialog } from '../tasks/TaskDialog';
import { resultId, useTaskRun } from '../tasks/useTaskRun';
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
  return (
    <TaskDialog
      id="clone-disk"
      title={t.storage.cloneTitle(disk.name)}
      run={run}
      invalid={!!nameErr}
      onSubmit={() => run.start({ name, mode })}
      onClose={onClose}
      submitLabel={t.storage.cloneSubmit}
      busyLabel={t.storage.cloning}
    >
      <Field label={t.storage.cloneName} error={nameErr}>
        <input data-testid="clone-disk-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={run.busy}
          onChange={(e) => { setName(e.target.value); run.reset(); }} />
      </Field>
      <CloneModeField value={mode} onChange={(m) => { setMode(m); run.reset(); }} hints={t.storage.modeHints} disabled={run.busy} testId="clone-disk-mode" />
      {ownerActive && <p className="locked-reason">{t.storage.cloneNotStopped}</p>}
    </TaskDialog>
  );
}
