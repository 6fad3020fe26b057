import { useState, type FormEvent } from 'react';
import type { CloneMode, Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { navigate, paths } from '../../router';
import { CloneModeField } from '../disks/CloneModeField';
import { suggestCloneName } from '../disks/storageRules';
import { resultId, TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
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
      title={t.storage.cloneVmTitle(vm.name)}
      testId="clone-vm-dialog"
      locked={run.busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="clone-vm-form" busy={run.busy} disabled={!!nameErr} data-testid="clone-vm-submit">
            {run.busy ? t.storage.cloning : t.storage.cloneSubmit}
          </Button>
        </>
      }
    >
      <form id="clone-vm-form" className="form" onSubmit={submit} noValidate>
        <Field label={t.storage.cloneVmName} error={nameErr} hint={t.storage.cloneVmDisks(name || '…')}>
          <input data-testid="clone-vm-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={run.busy}
            onChange={(e) => { setName(e.target.value); run.reset(); }} />
        </Field>
        <CloneModeField value={mode} onChange={(m) => { setMode(m); run.reset(); }} hints={t.storage.cloneVmModeHints} disabled={run.busy} testId="clone-vm-mode" />
        {!stopped && <p className="locked-reason">{t.storage.cloneVmNotStopped}</p>}
        <TaskRunProgress task={run.task} testId="clone-vm-progress" />
        <ErrorText error={run.error} testId="clone-vm-error" />
      </form>
    </Dialog>
  );
}
