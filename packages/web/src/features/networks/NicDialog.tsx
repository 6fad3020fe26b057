import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Network, Nic, NicModel, UpdateNicBody, Vm } from '@qemu-manager/contract';
import { networkKeys, nicsApi } from '../../api/networks';
import { qk } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { isValidMac } from './networkRules';

export const NIC_MODELS: readonly NicModel[] = ['virtio', 'e1000e', 'rtl8139'];

/** Add a NIC (nic null) or change one. While the VM runs only the network can change. */
export function NicDialog({ vm, nic, networks, onClose }: { vm: Vm; nic: Nic | null; networks: Network[]; onClose: () => void }) {
  const qc = useQueryClient();
  const w = t.networks;
  const running = vm.status !== 'stopped';
  const [network, setNetwork] = useState(nic?.network ?? networks[0]?.id ?? 'user');
  const [model, setModel] = useState<NicModel>(nic?.model ?? 'virtio');
  const [mac, setMac] = useState(nic?.mac ?? '');
  const [submitted, setSubmitted] = useState(false);
  const macErr = mac.trim() && !isValidMac(mac.trim()) ? w.macInvalid : null;
  const save = useMutation({
    mutationFn: () => {
      if (!nic) return nicsApi.create(vm.id, { network, model, ...(mac.trim() ? { mac: mac.trim() } : {}) });
      const body: UpdateNicBody = {};
      if (network !== nic.network) body.network = network;
      if (!running && model !== nic.model) body.model = model;
      if (!running && mac.trim() && mac.trim().toLowerCase() !== nic.mac.toLowerCase()) body.mac = mac.trim();
      return Object.keys(body).length ? nicsApi.update(vm.id, nic.id, body) : Promise.resolve(nic);
    },
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: qk.vm(vm.id), exact: true });
      void qc.invalidateQueries({ queryKey: networkKeys.networks });
      void qc.invalidateQueries({ queryKey: networkKeys.forwards(vm.id) });
      onClose();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (!macErr) save.mutate();
  };
  const id = nic ? 'edit-nic' : 'add-nic';
  return (
    <Dialog
      open
      onClose={onClose}
      title={nic ? w.editNicTitle : w.addNicTitle}
      testId={`${id}-dialog`}
      locked={save.isPending}
      footer={
        <>
          <Button onClick={onClose} disabled={save.isPending}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form={`${id}-form`} busy={save.isPending} data-testid={`${id}-submit`}>{nic ? w.editNicSubmit : w.addNicSubmit}</Button>
        </>
      }
    >
      <form id={`${id}-form`} className="form" onSubmit={submit} noValidate>
        {running && <p className="note small">{nic ? w.runningOnlyNetwork : w.hotplugHint}</p>}
        <Field label={w.network}>
          <select value={network} onChange={(e) => { setNetwork(e.target.value); save.reset(); }} data-testid={`${id}-network`}>
            {networks.map((n) => (
              <option key={n.id} value={n.id}>{n.name} ({w.types[n.type]})</option>
            ))}
          </select>
        </Field>
        <Field label={w.model}>
          <select value={model} onChange={(e) => { setModel(e.target.value as NicModel); save.reset(); }} disabled={!!nic && running} data-testid={`${id}-model`}>
            {NIC_MODELS.map((m) => <option key={m} value={m}>{m}</option>)}
          </select>
        </Field>
        <Field label={w.mac} hint={w.macHint} error={submitted ? macErr : null}>
          <input value={mac} onChange={(e) => { setMac(e.target.value); save.reset(); }} maxLength={17} placeholder="52:54:00:…" disabled={!!nic && running}
            autoComplete="off" spellCheck={false} className="mono" data-testid={`${id}-mac`} />
        </Field>
        <ErrorText error={save.error} testId={`${id}-error`} />
      </form>
    </Dialog>
  );
}
