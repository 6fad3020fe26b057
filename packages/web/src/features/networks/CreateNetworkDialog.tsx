import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Network } from '@qemu-manager/contract';
import { networkKeys, networksApi } from '../../api/networks';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { createNetworkBody, emptyNetworkForm, networkFormErrors, type NetworkForm } from './networkRules';

const TYPES = ['nat', 'isolated', 'bridge'] as const;

/** New nat / isolated / bridge network; the client checks mirror the contract, the server's errors are shown. */
export function CreateNetworkDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [f, setF] = useState<NetworkForm>(emptyNetworkForm);
  const [submitted, setSubmitted] = useState(false);
  const create = useMutation({
    mutationFn: () => networksApi.create(createNetworkBody(f)),
    onSuccess: (net: Network) => {
      qc.setQueryData(networkKeys.networks, (old: { networks: Network[] } | undefined) =>
        old ? { ...old, networks: [...old.networks.filter((n) => n.id !== net.id), net] } : old,
      );
      void qc.invalidateQueries({ queryKey: networkKeys.networks });
      close();
    },
  });
  const errors = networkFormErrors(f);
  const show = (k: keyof typeof errors) => (submitted ? (errors[k] ?? null) : null);
  const set = (patch: Partial<NetworkForm>) => {
    setF({ ...f, ...patch });
    create.reset();
  };
  function close() {
    setF(emptyNetworkForm());
    setSubmitted(false);
    create.reset();
    onClose();
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (Object.keys(errors).length === 0) create.mutate();
  };
  const w = t.networks;
  return (
    <Dialog
      open={open}
      onClose={close}
      title={w.createTitle}
      testId="create-network-dialog"
      locked={create.isPending}
      footer={
        <>
          <Button onClick={close} disabled={create.isPending}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="create-network-form" busy={create.isPending} data-testid="create-network-submit">{w.createSubmit}</Button>
        </>
      }
    >
      <form id="create-network-form" className="form" onSubmit={submit} noValidate>
        <Field label={w.name} hint={w.nameHint} error={show('name')}>
          <input value={f.name} onChange={(e) => set({ name: e.target.value })} maxLength={12} autoFocus autoComplete="off" spellCheck={false} data-testid="create-network-name" />
        </Field>
        <fieldset className="fieldset choices">
          <legend>{w.type}</legend>
          {TYPES.map((ty) => (
            <label key={ty} className="choice">
              <input type="radio" name="network-type" value={ty} checked={f.type === ty} onChange={() => set({ type: ty })} data-testid={`create-network-type-${ty}`} />
              <span className="choice-text">
                <span className="choice-title">{w.types[ty]}</span>
                <span className="muted small">{w.typeHints[ty]}</span>
              </span>
            </label>
          ))}
        </fieldset>
        {f.type === 'bridge' ? (
          <Field label={w.bridge} hint={w.bridgeHint} error={show('bridge')}>
            <input value={f.bridge} onChange={(e) => set({ bridge: e.target.value })} maxLength={15} autoComplete="off" spellCheck={false} data-testid="create-network-bridge" />
          </Field>
        ) : (
          <>
            <Field label={w.subnet} hint={w.subnetHint} error={show('subnet')}>
              <input value={f.subnet} onChange={(e) => set({ subnet: e.target.value })} maxLength={18} placeholder="192.168.100.0/24" autoComplete="off" spellCheck={false} data-testid="create-network-subnet" />
            </Field>
            <fieldset className="fieldset choices">
              <legend>{w.dhcp}</legend>
              {(['default', 'none', 'custom'] as const).map((m) => (
                <label key={m} className="choice">
                  <input type="radio" name="network-dhcp" value={m} checked={f.dhcpMode === m} onChange={() => set({ dhcpMode: m })} data-testid={`create-network-dhcp-${m}`} />
                  <span>{m === 'default' ? w.dhcpDefault : m === 'none' ? w.dhcpNone : w.dhcpCustom}</span>
                </label>
              ))}
            </fieldset>
            {f.dhcpMode === 'custom' && (
              <div className="form-row">
                <Field label={w.dhcpStart} error={show('dhcp')}>
                  <input value={f.dhcpStart} onChange={(e) => set({ dhcpStart: e.target.value })} maxLength={15} inputMode="decimal" autoComplete="off" data-testid="create-network-dhcp-start" />
                </Field>
                <Field label={w.dhcpEnd}>
                  <input value={f.dhcpEnd} onChange={(e) => set({ dhcpEnd: e.target.value })} maxLength={15} inputMode="decimal" autoComplete="off" data-testid="create-network-dhcp-end" />
                </Field>
              </div>
            )}
          </>
        )}
        <ErrorText error={create.error} testId="create-network-error" />
      </form>
    </Dialog>
  );
}
