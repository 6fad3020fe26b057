import type { Disk } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';
import type { DiskRepo } from './repo.js';

/**
 * Clones and backing chains (issue 10): a disk that other managed disks back onto (the base of a
 * linked clone) is read by them; deleting, resizing or writing it would destroy them. Refuses
 * with 409 DISK_HAS_CHILDREN naming them; `what` words the refused action ("deleted", "resized",
 * "started"...).
 */
export function refuseBase(repo: Pick<DiskRepo, 'get'>, disk: Pick<Disk, 'name' | 'children'>, what: string): void {
  const children = disk.children ?? [];
  if (children.length === 0) return;
  const names = children.map((id) => repo.get(id)?.name ?? id);
  throw new AppError(
    'DISK_HAS_CHILDREN',
    `Disk ${disk.name} is the backing file of ${names.length === 1 ? 'disk' : 'disks'} ${names.join(', ')}; it cannot be ${what} while ${names.length === 1 ? 'that disk exists' : 'those disks exist'} (delete ${names.length === 1 ? 'it' : 'them'} first, or make a full clone)`,
  );
}
