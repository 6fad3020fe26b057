import { useState } from 'react';
import type { CloneMode, Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { useVms } from '../../api/queries';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { navigate, paths } from '../../router';
import { CloneModeField } from '../disks/CloneModeField';
import { suggestCloneName } from '../disks/storageRules';
import { TaskDialog } from '../tasks/TaskDialog';
import { resultId, useTaskRun } from '../tasks/useTaskRun';
import { cloneVmNameError } from './snapshotTree';

/** Clone a stopped machine, fully or linked. Mounted only while open; opens the new machine when done. */
export function CloneVmDialog({ vm, onClose }: { vm: Vm; onClose: () => void }) {
  const vms = useVms();
  const [name, setName] = useState(() => suggestCloneName(vm.name.slice(0, 57), (vms.data ?? []).map((v) => v.name)).slice(0, 57));
  const [mode, setMode] = useState<CloneMode>('linked');
  const run = useTaskRun((body: { name: string; mode: CloneMode }) => vmsApi.clone(vm.id, body), (task) => {
    onClose();
    const made = resultId(task, 'vm');
    if (made) navigate(paths.vm(made));
  });
  const made = resultId(run.task, 'vm');
  const nameErr = cloneVmNameError(name, vms.data?.filter((v) => v.id !== made));
  const stopped = vm.status === 'stopped';
  return (
    <TaskDialog
      id="clone-vm"
      title={t.storage.cloneVmTitle(vm.name)}
      run={run}
      invalid={!!nameErr}
      onSubmit={() => run.start({ name, mode })}
      onClose={onClose}
      submitLabel={t.storage.cloneSubmit}
      busyLabel={t.storage.cloning}
    >
      <Field label={t.storage.cloneVmName} error={nameErr} hint={t.storage.cloneVmDisks(name || '…')}>
        <input data-testid="clone-vm-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={run.busy}
          onChange={(e) => { setName(e.target.value); run.reset(); }} />
      </Field>
      <CloneModeField value={mode} onChange={(m) => { setMode(m); run.reset(); }} hints={t.storage.cloneVmModeHints} disabled={run.busy} testId="clone-vm-mode" />
      {!stopped && <p className="locked-reason">{t.storage.cloneVmNotStopped}</p>}
    </TaskDialog>
  );
}
