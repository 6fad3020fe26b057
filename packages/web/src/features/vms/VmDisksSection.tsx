import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { upsertVm, useDisks } from '../../api/queries';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { basename, formatBytes } from '../../lib/format';
import { t } from '../../i18n';
import { attachableDisks } from '../disks/diskRules';
import { canAttachDisk, canDetachDisk } from './actions';

export function VmDisksSection({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const disks = useDisks();
  const [pick, setPick] = useState('');
  const free = attachableDisks(disks.data ?? []).filter((d) => !vm.disks.some((a) => a.path === d.path));
  const byPath = new Map((disks.data ?? []).map((d) => [d.path, d]));

  const attach = useMutation({
    mutationFn: (path: string) => vmsApi.attachDisk(vm.id, path),
    onSuccess: (updated) => {
      upsertVm(qc, updated);
      setPick('');
    },
  });
  const detach = useMutation({
    mutationFn: (path: string) => vmsApi.detachDisk(vm.id, path),
    onSuccess: (updated) => upsertVm(qc, updated),
  });
  const locked = !canAttachDisk(vm.status);

  return (
    <section className="card" data-testid="vm-disks">
      <h2>{t.detail.disks}</h2>
      {locked && <p className="locked-reason">{t.detail.disksLocked}</p>}
      {vm.disks.length === 0 ? (
        <p className="muted">{t.detail.noDisks}</p>
      ) : (
        <ul className="item-list">
          {vm.disks.map((d) => {
            const managed = byPath.get(d.path);
            return (
              <li key={d.path} className="item" data-testid={`vm-disk-${basename(d.path)}`}>
                <div className="item-main">
                  <span className="item-title" title={d.path}>{managed?.name ?? basename(d.path)}</span>
                  <span className="muted small">
                    {[d.format ?? managed?.format, managed ? formatBytes(managed.info?.['virtual-size'] ?? managed.size * 1024 ** 3) : t.detail.externalDisk]
                      .filter(Boolean)
                      .join(' · ')}
                  </span>
                </div>
                <Button size="sm" disabled={!canDetachDisk(vm.status)} busy={detach.isPending && detach.variables === d.path}
                  onClick={() => detach.mutate(d.path)} data-testid="disk-detach" title={locked ? t.detail.disksLocked : undefined}>
                  {t.detail.detach}
                </Button>
              </li>
            );
          })}
        </ul>
      )}
      <ErrorText error={detach.error} testId="disk-detach-error" onDismiss={detach.reset} />
      <div className="inline-form">
        <select aria-label={t.detail.attachPick} value={pick} disabled={locked || free.length === 0} onChange={(e) => { setPick(e.target.value); attach.reset(); }} data-testid="disk-attach-select">
          <option value="">{free.length === 0 ? t.detail.attachNone : t.detail.attachPick}</option>
          {free.map((d) => (
            <option key={d.id} value={d.path}>
              {d.name} ({d.format}, {formatBytes(d.info?.['virtual-size'] ?? d.size * 1024 ** 3)})
            </option>
          ))}
        </select>
        <Button disabled={locked || !pick} busy={attach.isPending} onClick={() => attach.mutate(pick)} data-testid="disk-attach">
          {t.detail.attach}
        </Button>
      </div>
      <ErrorText error={attach.error} testId="disk-attach-error" onDismiss={attach.reset} />
    </section>
  );
}
