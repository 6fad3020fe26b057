import { useState, type FormEvent } from 'react';
import type { Backup, RestoreBackupBody, Vm } from '@qemu-manager/contract';
import { backupsApi } from '../../api/endpoints';
import { useRefreshBackups, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { formatDateTime } from '../../lib/format';
import { t } from '../../i18n';
import { navigate, paths } from '../../router';
import { resultId, TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { replaceBlockedReason, restoreNameError, suggestRestoreName } from './backupRules';

/**
 * Restore as a new machine (a name) or over the machine's own disks (stopped only; the reason is
 * shown while it runs). Mounted only while open; a new machine opens when the task has made it.
 */
export function RestoreBackupDialog({ backup, vm, onClose }: { backup: Backup; vm: Vm | undefined; onClose: () => void }) {
  const vms = useVms();
  const [as, setAs] = useState<'new' | 'replace'>('new');
  const [name, setName] = useState(() => suggestRestoreName(backup.vmName, (vms.data ?? []).map((v) => v.name)));
  const refresh = useRefreshBackups();
  const run = useTaskRun((body: RestoreBackupBody) => backupsApi.restore(backup.id, body), (task) => {
    refresh();
    onClose();
    const made = resultId(task, 'vm');
    if (made && as === 'new') navigate(paths.vm(made));
  });
  const made = resultId(run.task, 'vm');
  const nameErr = as === 'new' ? restoreNameError(name, vms.data?.filter((v) => v.id !== made)) : null;
  const replaceBlocked = replaceBlockedReason(vm?.status);
  const close = () => {
    run.reset();
    onClose();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (as === 'new' && !nameErr) run.start({ as: 'new', name });
    if (as === 'replace' && !replaceBlocked) run.start({ as: 'replace' });
  };
  return (
    <Dialog
      open
      onClose={close}
      title={t.backups.restoreTitle(formatDateTime(backup.createdAt))}
      testId="restore-backup-dialog"
      locked={run.busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
          <Button variant={as === 'replace' ? 'danger' : 'primary'} type="submit" form="restore-backup-form" busy={run.busy}
            disabled={as === 'new' ? !!nameErr : !!replaceBlocked} data-testid="restore-backup-submit">
            {run.busy ? t.backups.restoring : t.backups.restoreSubmit}
          </Button>
        </>
      }
    >
      <form id="restore-backup-form" className="form" onSubmit={submit} noValidate>
        <fieldset className="fieldset choices" data-testid="restore-backup-as">
          <legend>{t.backups.restoreAs}</legend>
          {(['new', 'replace'] as const).map((m) => (
            <label key={m} className="choice">
              <input type="radio" name="restore-as" value={m} checked={as === m} disabled={run.busy || (m === 'replace' && !!replaceBlocked)}
                onChange={() => { setAs(m); run.reset(); }} data-testid={`restore-backup-as-${m}`} />
              <span className="choice-text">
                <span className="choice-title">{t.backups.restoreModes[m]}</span>
                <span className="field-hint">{t.backups.restoreModeHints[m]}</span>
                {m === 'replace' && replaceBlocked && <span className="locked-reason" data-testid="restore-replace-blocked">{replaceBlocked}</span>}
              </span>
            </label>
          ))}
        </fieldset>
        {as === 'new' && (
          <Field label={t.backups.restoreName} error={nameErr}>
            <input data-testid="restore-backup-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={run.busy}
              onChange={(e) => { setName(e.target.value); run.reset(); }} />
          </Field>
        )}
        <TaskRunProgress task={run.task} testId="restore-backup-progress" />
        <ErrorText error={run.error} testId="restore-backup-error" />
      </form>
    </Dialog>
  );
}
