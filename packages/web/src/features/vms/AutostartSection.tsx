import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { upsertVm } from '../../api/queries';
import { useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { AUTOSTART_MAX_DELAY_S, AUTOSTART_MAX_ORDER, checkAutostart, draftOf, type AutostartDraft } from './autostartForm';

/** The VM page's Autostart editor: enabled, order, delay (PUT /api/vms/{id}/autostart). Works in any VM state. */
export function AutostartSection({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const readOnly = useReadOnlyAccess();
  const [draft, setDraft] = useState<AutostartDraft>(() => draftOf(vm.autostart));
  const [editing, setEditing] = useState(false);
  const { enabled, order, delayS } = vm.autostart;
  // Follow the server's values (events) until the user starts editing.
  useEffect(() => {
    if (!editing) setDraft(draftOf({ enabled, order, delayS }));
  }, [enabled, order, delayS, editing]);

  const check = checkAutostart(draft, vm.autostart);
  const save = useMutation({
    mutationFn: () => vmsApi.setAutostart(vm.id, check.body!),
    onSuccess: (updated) => {
      upsertVm(qc, updated);
      setEditing(false);
    },
  });
  const change = (patch: Partial<AutostartDraft>) => {
    setEditing(true);
    setDraft((d) => ({ ...d, ...patch }));
    save.reset();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (check.body && check.dirty) save.mutate();
  };

  return (
    <section className="card" data-testid="vm-autostart">
      <h2>{t.autostart.title}</h2>
      <p className="muted small" data-testid="autostart-summary">
        {vm.autostart.enabled ? t.autostart.summaryOn(vm.autostart.order, vm.autostart.delayS) : t.autostart.summaryOff}
      </p>
      {readOnly && <p className="locked-reason" data-testid="autostart-locked">{t.autostart.adminOnly}</p>}
      <form className="form" onSubmit={submit}>
        <label className="choice">
          <input type="checkbox" data-testid="autostart-enabled" checked={draft.enabled} disabled={readOnly}
            onChange={(e) => change({ enabled: e.target.checked })} />
          <span className="choice-text">
            <span className="choice-title">{t.autostart.enabled}</span>
            <span className="field-hint">{t.autostart.intro}</span>
          </span>
        </label>
        <div className="form-row">
          <Field label={t.autostart.order} hint={t.autostart.orderHint} error={check.orderError ? t.autostart.orderInvalid(AUTOSTART_MAX_ORDER) : null}>
            <input data-testid="autostart-order" type="number" inputMode="numeric" min={0} max={AUTOSTART_MAX_ORDER} value={draft.order} disabled={readOnly}
              onChange={(e) => change({ order: e.target.value })} />
          </Field>
          <Field label={t.autostart.delay} hint={t.autostart.delayHint} error={check.delayError ? t.autostart.delayInvalid(AUTOSTART_MAX_DELAY_S) : null}>
            <input data-testid="autostart-delay" type="number" inputMode="numeric" min={0} max={AUTOSTART_MAX_DELAY_S} value={draft.delayS} disabled={readOnly}
              onChange={(e) => change({ delayS: e.target.value })} />
          </Field>
        </div>
        {!readOnly && (
          <div className="form-actions">
            {save.isSuccess && !check.dirty && <span className="ok-text" role="status" data-testid="autostart-saved">{t.detail.saved}</span>}
            {check.dirty && (
              <Button onClick={() => { setEditing(false); setDraft(draftOf(vm.autostart)); save.reset(); }}>{t.common.cancel}</Button>
            )}
            <Button type="submit" variant="primary" disabled={!check.dirty || !check.body} busy={save.isPending} data-testid="autostart-save">
              {t.common.save}
            </Button>
          </div>
        )}
        <ErrorText error={save.error} testId="autostart-error" />
      </form>
    </section>
  );
}
