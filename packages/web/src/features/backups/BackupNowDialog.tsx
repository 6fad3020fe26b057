import { useState, type FormEvent } from 'react';
import type { CreateBackupBody, Vm } from '@qemu-manager/contract';
import { backupsApi } from '../../api/endpoints';
import { useBackupTargets, useRefreshBackups } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';

type Mode = 'auto' | 'full';

/** Target and kind of one backup of this VM now. Mounted only while open; closes when the task succeeded. */
export function BackupNowDialog({ vm, onClose }: { vm: Vm; onClose: () => void }) {
  const targets = useBackupTargets();
  const [target, setTarget] = useState('default');
  const [mode, setMode] = useState<Mode>('auto');
  const refresh = useRefreshBackups();
  const run = useTaskRun((body: CreateBackupBody) => backupsApi.create(vm.id, body), () => {
    refresh();
    onClose();
  });
  const names = targets.data?.map((x) => x.name) ?? ['default'];
  const close = () => {
    run.reset();
    onClose();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run.start({ ...(target !== 'default' ? { target } : {}), ...(mode === 'full' ? { mode: 'full' } : {}) });
  };
  return (
    <Dialog
      open
      onClose={close}
      title={t.backups.backUpTitle(vm.name)}
      testId="backup-now-dialog"
      locked={run.busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="backup-now-form" busy={run.busy} data-testid="backup-now-submit">
            {run.busy ? t.backups.backingUp : t.backups.backUpSubmit}
          </Button>
        </>
      }
    >
      <form id="backup-now-form" className="form" onSubmit={submit} noValidate>
        <Field label={t.backups.target}>
          <select value={target} disabled={run.busy} onChange={(e) => { setTarget(e.target.value); run.reset(); }} data-testid="backup-now-target">
            {names.map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
        </Field>
        <fieldset className="fieldset choices" data-testid="backup-now-mode">
          <legend>{t.backups.mode}</legend>
          {(['auto', 'full'] as const).map((m) => (
            <label key={m} className="choice">
              <input type="radio" name="backup-mode" value={m} checked={mode === m} disabled={run.busy} onChange={() => { setMode(m); run.reset(); }} data-testid={`backup-now-mode-${m}`} />
              <span className="choice-text">
                <span className="choice-title">{t.backups.modes[m]}</span>
                <span className="field-hint">{t.backups.modeHints[m]}</span>
              </span>
            </label>
          ))}
        </fieldset>
        {vm.status !== 'stopped' && <p className="muted small">{t.backups.runningNote}</p>}
        <TaskRunProgress task={run.task} testId="backup-now-progress" />
        <ErrorText error={run.error} testId="backup-now-error" />
      </form>
    </Dialog>
  );
}
