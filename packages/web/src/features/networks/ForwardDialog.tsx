import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Network, Vm } from '@qemu-manager/contract';
import { forwardsApi, networkKeys } from '../../api/networks';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { createForwardBody, emptyForwardForm, forwardFormErrors, type ForwardForm } from './networkRules';

/** A new port forward; 0.0.0.0 is offered only when the server requires authentication. */
export function ForwardDialog({ vm, networks, allowAllAddresses, onClose }: { vm: Vm; networks: Network[]; allowAllAddresses: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const w = t.networks;
  const [f, setF] = useState<ForwardForm>(emptyForwardForm);
  const [submitted, setSubmitted] = useState(false);
  const errors = forwardFormErrors(f);
  const set = (patch: Partial<ForwardForm>) => {
    setF({ ...f, ...patch });
    create.reset();
  };
  const create = useMutation({
    mutationFn: () => forwardsApi.create(vm.id, createForwardBody(f)),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: networkKeys.forwards(vm.id) });
      onClose();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (Object.keys(errors).length === 0) create.mutate();
  };
  const netName = (id: string) => networks.find((n) => n.id === id)?.name ?? id;
  return (
    <Dialog
      open
      onClose={onClose}
      title={w.addForwardTitle}
      testId="add-forward-dialog"
      locked={create.isPending}
      footer={
        <>
          <Button onClick={onClose} disabled={create.isPending}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="add-forward-form" busy={create.isPending} data-testid="add-forward-submit">{w.addForwardSubmit}</Button>
        </>
      }
    >
      <form id="add-forward-form" className="form" onSubmit={submit} noValidate>
        <div className="form-row">
          <Field label={w.protocol}>
            <select value={f.protocol} onChange={(e) => set({ protocol: e.target.value as ForwardForm['protocol'] })} data-testid="add-forward-protocol">
              <option value="tcp">TCP</option>
              <option value="udp">UDP</option>
            </select>
          </Field>
          <Field label={w.hostAddress} hint={allowAllAddresses ? w.hostAddressAllHint : undefined}>
            <select value={f.hostAddress} onChange={(e) => set({ hostAddress: e.target.value as ForwardForm['hostAddress'] })} data-testid="add-forward-address">
              <option value="127.0.0.1">{w.hostAddressLoopback}</option>
              {allowAllAddresses && <option value="0.0.0.0">{w.hostAddressAll}</option>}
            </select>
          </Field>
        </div>
        <div className="form-row">
          <Field label={w.hostPort} error={submitted ? (errors.hostPort ?? null) : null}>
            <input value={f.hostPort} onChange={(e) => set({ hostPort: e.target.value })} inputMode="numeric" maxLength={5} autoComplete="off" data-testid="add-forward-host-port" />
          </Field>
          <Field label={w.guestPort} error={submitted ? (errors.guestPort ?? null) : null}>
            <input value={f.guestPort} onChange={(e) => set({ guestPort: e.target.value })} inputMode="numeric" maxLength={5} autoComplete="off" data-testid="add-forward-guest-port" />
          </Field>
        </div>
        {vm.nics.length > 1 && (
          <Field label={w.forwardNic}>
            <select value={f.nic} onChange={(e) => set({ nic: e.target.value })} data-testid="add-forward-nic">
              <option value="">{w.forwardNicDefault}</option>
              {vm.nics.map((n) => <option key={n.id} value={n.id}>{`${n.mac} (${netName(n.network)})`}</option>)}
            </select>
          </Field>
        )}
        <ErrorText error={create.error} testId="add-forward-error" />
      </form>
    </Dialog>
  );
}
