import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { upsertVm, useIsos } from '../../api/queries';
import { useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { basename } from '../../lib/format';
import { t } from '../../i18n';
import { HardwareFields } from './HardwareFields';
import { draftOfVm, hardwareChange, hardwareErrors, hardwareSummary, type HardwareDraft } from './hardwareRules';

/** The VM page's Hardware section: every option; Edit while stopped (PUT /api/vms/{id}/hardware). */
export function HardwareSection({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const isos = useIsos();
  const readOnly = useReadOnlyAccess();
  const [draft, setDraft] = useState<HardwareDraft | null>(null);
  const stopped = vm.status === 'stopped';
  const lockReason = vm.template ? t.hardware.templateLocked : !stopped ? t.hardware.locked : null;
  const editing = draft !== null && !lockReason;
  const change = draft ? hardwareChange(draft, vm) : null;
  const invalid = draft ? hardwareErrors(draft).length > 0 : false;
  const save = useMutation({
    mutationFn: () => vmsApi.setHardware(vm.id, change!),
    onSuccess: (updated) => {
      upsertVm(qc, updated);
      setDraft(null);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (change && !invalid) save.mutate();
  };
  const boot = vm.bootOrder.map((d) => t.hardware.bootDevices[d]).join(' → ');
  return (
    <section className="card" data-testid="vm-hardware">
      <div className="card-header">
        <h2>{t.hardware.title}</h2>
        {!editing && !readOnly && (
          <div className="card-actions">
            <Button size="sm" disabled={!!lockReason} title={lockReason ?? undefined} onClick={() => { save.reset(); setDraft(draftOfVm(vm)); }} data-testid="hw-edit">
              {t.hardware.edit}
            </Button>
          </div>
        )}
      </div>
      <p className="muted small" data-testid="hw-summary">{hardwareSummary(vm)}</p>
      {lockReason && <p className="locked-reason" data-testid="hw-locked">{lockReason}</p>}
      {draft && editing ? (
        <form className="form" onSubmit={submit}>
          <HardwareFields draft={draft} onChange={(d) => { setDraft(d); save.reset(); }} isos={isos.data} disabled={save.isPending} testId="hw" />
          <div className="form-actions">
            <Button onClick={() => { setDraft(null); save.reset(); }} disabled={save.isPending} data-testid="hw-cancel">{t.common.cancel}</Button>
            <Button type="submit" variant="primary" disabled={!change || invalid} busy={save.isPending} data-testid="hw-save">{t.common.save}</Button>
          </div>
          <ErrorText error={save.error} testId="hw-error" />
        </form>
      ) : (
        <>
          <dl className="props" data-testid="hw-props">
            <dt>{t.hardware.osType}</dt>
            <dd data-testid="hw-os-value">{t.hardware.osTypes[vm.osType]}</dd>
            <dt>{t.hardware.firmware}</dt>
            <dd data-testid="hw-firmware-value">{t.hardware.firmwares[vm.firmware]}</dd>
            <dt>{t.hardware.secureBoot}</dt>
            <dd data-testid="hw-secure-boot-value">{vm.secureBoot ? t.common.yes : t.common.no}</dd>
            <dt>{t.hardware.tpm}</dt>
            <dd data-testid="hw-tpm-value">{vm.tpm ? t.common.yes : t.common.no}</dd>
            <dt>{t.hardware.machine}</dt>
            <dd>{t.hardware.machines[vm.machine]}</dd>
            <dt>{t.hardware.diskBus}</dt>
            <dd>{t.hardware.diskBuses[vm.diskBus]}</dd>
            <dt>{t.hardware.nicModel}</dt>
            <dd>{t.hardware.nicModels[vm.nicModel]}</dd>
            <dt>{t.hardware.bootOrder}</dt>
            <dd data-testid="hw-boot-value">{boot}</dd>
            <dt>{t.hardware.driversIso}</dt>
            <dd title={vm.driversIso ?? undefined}>{vm.driversIso ? basename(vm.driversIso) : t.hardware.driversIsoNone}</dd>
          </dl>
          {save.isSuccess && <p className="ok-text" role="status" data-testid="hw-saved">{t.hardware.saved}</p>}
        </>
      )}
    </section>
  );
}
