import type { Disk, Vm } from '@qemu-manager/contract';
import { t } from '../../i18n';

export const canDeleteDisk = (d: Pick<Disk, 'attachedTo' | 'status'>): boolean => d.attachedTo === null && d.status !== 'creating';

/** Why a disk cannot be deleted, in words; null when it can. */
export function deleteDiskBlockedReason(d: Pick<Disk, 'attachedTo' | 'status'>, vms: Pick<Vm, 'id' | 'name'>[] | undefined): string | null {
  if (d.attachedTo !== null) return t.disks.deleteLocked(vms?.find((v) => v.id === d.attachedTo)?.name ?? t.disks.unknownVm);
  if (d.status === 'creating') return t.disks.deleteCreating;
  return null;
}

/** Disks a VM could attach now: ready, not attached anywhere. */
export const attachableDisks = (disks: Disk[]): Disk[] => disks.filter((d) => d.status === 'ready' && d.attachedTo === null);
