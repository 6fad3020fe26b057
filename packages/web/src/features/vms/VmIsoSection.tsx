import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { upsertVm, useIsos } from '../../api/queries';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { basename, formatBytes } from '../../lib/format';
import { t } from '../../i18n';
import { canChangeIso } from './actions';

export function VmIsoSection({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const isos = useIsos();
  const [pick, setPick] = useState('');
  const mount = useMutation({
    mutationFn: (path: string) => vmsApi.mountIso(vm.id, path),
    onSuccess: (updated) => {
      upsertVm(qc, updated);
      setPick('');
    },
  });
  const eject = useMutation({ mutationFn: () => vmsApi.unmountIso(vm.id), onSuccess: (updated) => upsertVm(qc, updated) });
  const allowed = canChangeIso(vm.status);
  const choices = (isos.data ?? []).filter((i) => i.path !== vm.iso);

  return (
    <section className="card" data-testid="vm-iso">
      <h2>{t.detail.iso}</h2>
      {!allowed && <p className="locked-reason">{t.detail.isoBusy}</p>}
      <div className="item">
        <div className="item-main">
          <span className="item-title" data-testid="vm-iso-current" title={vm.iso ?? undefined}>
            {vm.iso ? basename(vm.iso) : <span className="muted">{t.detail.isoEmpty}</span>}
          </span>
        </div>
        {vm.iso && (
          <Button size="sm" disabled={!allowed} busy={eject.isPending} onClick={() => { mount.reset(); eject.mutate(); }} data-testid="iso-eject">
            {t.detail.eject}
          </Button>
        )}
      </div>
      <ErrorText error={eject.error} testId="iso-eject-error" onDismiss={eject.reset} />
      <div className="inline-form">
        <select aria-label={t.detail.isoPick} value={pick} disabled={!allowed || choices.length === 0} onChange={(e) => { setPick(e.target.value); mount.reset(); }} data-testid="iso-select">
          <option value="">{(isos.data?.length ?? 0) === 0 ? t.createVm.isoEmpty : t.detail.isoPick}</option>
          {choices.map((i) => (
            <option key={i.path} value={i.path}>{i.name} ({formatBytes(i.size)})</option>
          ))}
        </select>
        <Button disabled={!allowed || !pick} busy={mount.isPending} onClick={() => { eject.reset(); mount.mutate(pick); }} data-testid="iso-mount">
          {t.detail.mount}
        </Button>
      </div>
      <ErrorText error={mount.error} testId="iso-mount-error" onDismiss={mount.reset} />
    </section>
  );
}
