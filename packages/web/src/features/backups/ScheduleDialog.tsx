import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { BackupSchedule } from '@qemu-manager/contract';
import { backupSchedulesApi } from '../../api/endpoints';
import { qk, useBackups, useBackupTargets, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { formatBytes, formatDateTime } from '../../lib/format';
import { t } from '../../i18n';
import {
  emptyScheduleForm, EVERY_CHOICES, kindLabel, RETENTION_RULES, retentionFromForm, retentionPreview, scheduleToForm, validateSchedule,
  type ScheduleForm,
} from './backupRules';

/** Create or edit a schedule, with a preview of what its retention keeps of the current backups. */
export function ScheduleDialog({ schedule, all, onClose }: { schedule: BackupSchedule | null; all: BackupSchedule[] | undefined; onClose: () => void }) {
  const qc = useQueryClient();
  const vms = useVms();
  const targets = useBackupTargets();
  const backups = useBackups();
  const [form, setForm] = useState<ScheduleForm>(() => (schedule ? scheduleToForm(schedule) : emptyScheduleForm()));
  const [touched, setTouched] = useState(false);
  const save = useMutation({
    mutationFn: (body: NonNullable<ReturnType<typeof validateSchedule>['body']>) =>
      schedule ? backupSchedulesApi.update(schedule.id, body) : backupSchedulesApi.create(body),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: qk.backupSchedules });
      onClose();
    },
  });
  const { errors, body } = validateSchedule(form, all?.filter((s) => s.id !== schedule?.id));
  // Name and machine choice are explained once the user tried to save or typed a name; the rest at once.
  const shown = touched || form.name ? errors : { ...errors, name: undefined, vms: undefined };
  const set = (patch: Partial<ScheduleForm>) => {
    setForm((f) => ({ ...f, ...patch }));
    save.reset();
  };
  const preview = retentionPreview(backups.data, { vms: form.allVms ? 'all' : form.vms, target: form.target }, retentionFromForm(form).retention);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (body) save.mutate(body);
  };
  const atHint = form.every === 'hourly' ? t.backups.atHintHourly : t.backups.atHintDaily;
  return (
    <Dialog
      open
      onClose={onClose}
      title={schedule ? t.backups.scheduleTitleEdit(schedule.name) : t.backups.scheduleTitleNew}
      testId="schedule-dialog"
      locked={save.isPending}
      size="lg"
      footer={
        <>
          <Button onClick={onClose} disabled={save.isPending}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="schedule-form" busy={save.isPending} disabled={touched && !body} data-testid="schedule-submit">
            {schedule ? t.backups.scheduleSubmitEdit : t.backups.scheduleSubmitNew}
          </Button>
        </>
      }
    >
      <form id="schedule-form" className="form" onSubmit={submit} noValidate>
        <div className="form-row">
          <Field label={t.backups.scheduleName} error={shown.name}>
            <input value={form.name} autoFocus autoComplete="off" spellCheck={false} onChange={(e) => set({ name: e.target.value })} data-testid="schedule-name" />
          </Field>
          <Field label={t.backups.target} error={shown.target}>
            <select value={form.target} onChange={(e) => set({ target: e.target.value })} data-testid="schedule-target">
              {(targets.data ?? [{ name: 'default' }]).map((x) => <option key={x.name} value={x.name}>{x.name}</option>)}
              {targets.data && !targets.data.some((x) => x.name === form.target) && <option value={form.target}>{form.target}</option>}
            </select>
          </Field>
        </div>
        <fieldset className="fieldset" data-testid="schedule-vms">
          <legend>{t.backups.scheduleVms}</legend>
          <label className="check">
            <input type="checkbox" checked={form.allVms} onChange={(e) => set({ allVms: e.target.checked })} data-testid="schedule-vms-all" />
            {t.backups.allVms}
          </label>
          {!form.allVms && (
            <div className="schedule-vm-choices">
              <span className="small muted">{t.backups.someVms}</span>
              {(vms.data ?? []).map((v) => (
                <label key={v.id} className="check">
                  <input type="checkbox" checked={form.vms.includes(v.id)} data-testid={`schedule-vm-${v.name}`}
                    onChange={(e) => set({ vms: e.target.checked ? [...form.vms, v.id] : form.vms.filter((x) => x !== v.id) })} />
                  {v.name}
                </label>
              ))}
            </div>
          )}
          {shown.vms && <p className="field-error" data-testid="schedule-vms-error">{shown.vms}</p>}
        </fieldset>
        <div className="form-row">
          <Field label={t.backups.every}>
            <select value={form.every} onChange={(e) => set({ every: e.target.value as ScheduleForm['every'], at: e.target.value === 'hourly' ? '00' : e.target.value === 'cron' ? '' : form.at.includes(':') ? form.at : '02:00' })} data-testid="schedule-every">
              {EVERY_CHOICES.map((c) => <option key={c} value={c}>{t.backups.everyChoices[c]}</option>)}
            </select>
          </Field>
          {form.every === 'cron' ? (
            <Field label={t.backups.cron} error={shown.cron} hint={t.backups.cronHint}>
              <input value={form.cron} className="mono" autoComplete="off" spellCheck={false} placeholder="30 2 * * 1-5" onChange={(e) => set({ cron: e.target.value })} data-testid="schedule-cron" />
            </Field>
          ) : (
            <Field label={t.backups.at} error={shown.at} hint={atHint}>
              <input value={form.at} className="mono" autoComplete="off" spellCheck={false} onChange={(e) => set({ at: e.target.value })} data-testid="schedule-at" />
            </Field>
          )}
        </div>
        <fieldset className="fieldset" data-testid="schedule-retention">
          <legend>{t.backups.retention}</legend>
          <p className="field-hint">{t.backups.retentionHint}</p>
          <div className="retention-fields">
            {RETENTION_RULES.map((rule) => (
              <Field key={rule} label={t.backups.rules[rule]} error={shown[rule]}>
                <input value={form.retention[rule]} inputMode="numeric" autoComplete="off" onChange={(e) => set({ retention: { ...form.retention, [rule]: e.target.value } })} data-testid={`schedule-${rule}`} />
              </Field>
            ))}
          </div>
        </fieldset>
        <label className="check">
          <input type="checkbox" checked={form.enabled} onChange={(e) => set({ enabled: e.target.checked })} data-testid="schedule-enabled" />
          {t.backups.enabled}
        </label>
        <section className="retention-preview" data-testid="retention-preview">
          <h3>{t.backups.preview}</h3>
          <p className="field-hint">{t.backups.previewHint}</p>
          {preview.length === 0 && <p className="muted small" data-testid="retention-preview-empty">{t.backups.previewEmpty}</p>}
          {preview.map((g) => (
            <div key={g.vm} className="preview-group" data-testid={`preview-${g.vmName}`} data-keep={g.keep} data-prune={g.prune}>
              <p className="small"><strong>{g.vmName}</strong> <span className="muted">{t.backups.previewCounts(g.keep, g.prune)}</span></p>
              <ul className="preview-rows">
                {g.rows.map((r) => (
                  <li key={r.backup.id} className={r.keep ? 'is-keep' : 'is-prune'} data-testid="preview-row" data-backup={r.backup.id} data-keep={r.keep} data-merged={r.merged}>
                    <span className={`badge ${r.keep ? 'badge-ok' : 'badge-task-failed'}`}>{r.keep ? t.backups.previewKeep : t.backups.previewPrune}</span>
                    <span>{formatDateTime(r.backup.createdAt)}</span>
                    <span className="muted small">{kindLabel(r.backup, g.rows.map((x) => x.backup))} · {formatBytes(r.backup.sizeBytes)}{r.reasons.length > 0 && ` · ${r.reasons.join(', ')}`}{r.merged && ` · ${t.backups.previewMerged}`}</span>
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </section>
        <ErrorText error={save.error} testId="schedule-save-error" />
      </form>
    </Dialog>
  );
}
