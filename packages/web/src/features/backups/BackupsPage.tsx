import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { BackupTarget } from '@qemu-manager/contract';
import { backupsApi, backupTargetsApi } from '../../api/endpoints';
import { qk, useBackups, useBackupTargets, useRefreshBackups, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { EmptyState } from '../../components/EmptyState';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { formatBytes } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { BackupList } from './BackupList';
import { importPathError, targetNameError, targetPathError } from './backupRules';
import { SchedulesCard } from './SchedulesCard';

/** Targets (with free space), every backup (filtered by VM and target), import, and schedules. */
export function BackupsPage() {
  useTitle(t.backups.title);
  return (
    <section className="page" data-testid="backups-page">
      <PageHeader title={t.backups.title} intro={t.backups.intro} />
      <div className="detail-grid">
        <div className="detail-col">
          <AllBackupsCard />
          <ImportCard />
        </div>
        <div className="detail-col">
          <TargetsCard />
          <SchedulesCard />
        </div>
      </div>
    </section>
  );
}

function TargetsCard() {
  const targets = useBackupTargets();
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [path, setPath] = useState('');
  const [touched, setTouched] = useState(false);
  const [removing, setRemoving] = useState<BackupTarget | null>(null);
  const add = useMutation({
    mutationFn: () => backupTargetsApi.create({ name, path }),
    onSuccess: () => {
      setName('');
      setPath('');
      setTouched(false);
      void qc.invalidateQueries({ queryKey: qk.backupTargets });
    },
  });
  const nameErr = touched || name ? targetNameError(name, targets.data) : null;
  const pathErr = touched || path ? targetPathError(path) : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (targetNameError(name, targets.data) || targetPathError(path)) return;
    add.mutate();
  };
  return (
    <section className="card" data-testid="backup-targets">
      <h2>{t.backups.targets}</h2>
      <ListStatus failed={targets.isError} loading={targets.isPending} error={targets.error} failedText={t.backups.targetsLoadFailed} retry={targets.refetch} testId="targets-error" />
      {targets.data && (
        <ul className="item-list backup-meta-list" data-testid="target-list">
          {targets.data.map((x) => (
            <li key={x.name} className="item" data-testid={`target-${x.name}`}>
              <div className="item-main">
                <span className="item-title">
                  {x.name}
                  {x.default && <span className="badge badge-ok" title={t.backups.defaultTargetTitle}>{t.backups.defaultTarget}</span>}
                </span>
                <span className="muted small mono break">{x.path}</span>
                <span className="muted small" data-testid="target-free">
                  {x.freeBytes !== null && x.totalBytes !== null ? t.backups.free(formatBytes(x.freeBytes), formatBytes(x.totalBytes)) : t.backups.freeUnknown}
                  {' · '}{t.backups.backupCount(x.backups)}
                </span>
              </div>
              {!x.default && (
                <Button size="sm" variant="ghost" onClick={() => setRemoving(x)} data-testid="target-delete">{t.common.delete}</Button>
              )}
            </li>
          ))}
        </ul>
      )}
      <form className="form" onSubmit={submit} noValidate data-testid="target-add">
        <div className="form-row">
          <Field label={t.backups.targetName} error={nameErr}>
            <input value={name} autoComplete="off" spellCheck={false} onChange={(e) => { setName(e.target.value); add.reset(); }} data-testid="target-add-name" />
          </Field>
          <Field label={t.backups.targetPath} error={pathErr} hint={t.backups.targetPathHint}>
            <input value={path} autoComplete="off" spellCheck={false} className="mono" placeholder="/mnt/backups" onChange={(e) => { setPath(e.target.value); add.reset(); }} data-testid="target-add-path" />
          </Field>
        </div>
        <div className="form-actions">
          <Button type="submit" variant="primary" busy={add.isPending} disabled={!!nameErr || !!pathErr} data-testid="target-add-submit">{t.backups.addTarget}</Button>
        </div>
        <ErrorText error={add.error} testId="target-add-error" onDismiss={add.reset} />
      </form>
      <ConfirmDialog
        open={!!removing}
        title={t.backups.deleteTargetTitle(removing?.name ?? '')}
        body={<p>{t.backups.deleteTargetBody}</p>}
        confirmLabel={t.backups.deleteTargetConfirm}
        danger
        testId="delete-target-dialog"
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          // A target that still holds backups or is a schedule's: the server's 409 reason shows here.
          await backupTargetsApi.remove(removing!.name);
          await qc.invalidateQueries({ queryKey: qk.backupTargets });
        }}
      />
    </section>
  );
}

function AllBackupsCard() {
  const [vm, setVm] = useState('');
  const [target, setTarget] = useState('');
  const all = useBackups();
  const vms = useVms();
  const targets = useBackupTargets();
  const shown = (all.data ?? []).filter((b) => (!vm || b.vm === vm) && (!target || b.target === target));
  // Machines that have backups (also deleted ones, by the name the backup recorded) and the others.
  const vmChoices = new Map<string, string>();
  for (const v of vms.data ?? []) vmChoices.set(v.id, v.name);
  for (const b of all.data ?? []) if (!vmChoices.has(b.vm)) vmChoices.set(b.vm, b.vmName);
  return (
    <section className="card" data-testid="all-backups">
      <div className="card-header">
        <h2>{t.backups.all}</h2>
        <div className="card-actions inline-form">
          <label className="small">
            {t.backups.filterVm}{' '}
            <select value={vm} onChange={(e) => setVm(e.target.value)} data-testid="backups-filter-vm">
              <option value="">{t.backups.filterAll}</option>
              {[...vmChoices].sort((a, b) => a[1].localeCompare(b[1])).map(([id, n]) => <option key={id} value={id}>{n}</option>)}
            </select>
          </label>
          <label className="small">
            {t.backups.filterTarget}{' '}
            <select value={target} onChange={(e) => setTarget(e.target.value)} data-testid="backups-filter-target">
              <option value="">{t.backups.filterAll}</option>
              {(targets.data ?? []).map((x) => <option key={x.name} value={x.name}>{x.name}</option>)}
            </select>
          </label>
        </div>
      </div>
      <ListStatus failed={all.isError} loading={all.isPending} error={all.error} failedText={t.backups.loadFailed} retry={all.refetch} testId="all-backups-error" />
      {all.data && shown.length === 0 && <EmptyState title={t.backups.emptyAll} hint={t.backups.emptyHint} testId="all-backups-empty" />}
      {shown.length > 0 && <BackupList backups={shown} all={all.data} showVm testId="all-backup-list" />}
    </section>
  );
}

function ImportCard() {
  const [path, setPath] = useState('');
  const [touched, setTouched] = useState(false);
  const run = useTaskRun((p: string) => backupsApi.import(p), useRefreshBackups());
  const err = touched || path ? importPathError(path) : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!importPathError(path)) run.start(path);
  };
  return (
    <section className="card" data-testid="backup-import">
      <h2>{t.backups.importTitle}</h2>
      <form className="form" onSubmit={submit} noValidate>
        <Field label={t.backups.importPath} error={err} hint={t.backups.importHint}>
          <input value={path} className="mono" autoComplete="off" spellCheck={false} disabled={run.busy} placeholder="/mnt/backups/…/…"
            onChange={(e) => { setPath(e.target.value); run.reset(); }} data-testid="backup-import-path" />
        </Field>
        <div className="form-actions">
          <Button type="submit" variant="primary" busy={run.busy} disabled={!!err} data-testid="backup-import-submit">{run.busy ? t.backups.importing : t.backups.importSubmit}</Button>
        </div>
        <TaskRunProgress task={run.task} testId="backup-import-progress" />
        {run.succeeded && <p className="ok-text" data-testid="backup-import-done">{t.backups.importDone}</p>}
        <ErrorText error={run.error} testId="backup-import-error" onDismiss={run.reset} />
      </form>
    </section>
  );
}
