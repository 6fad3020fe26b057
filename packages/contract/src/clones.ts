import { Type, type Static } from '@sinclair/typebox';
import { DISK_NAME_PATTERN } from './disks.js';
import { VM_NAME_PATTERN } from './vms.js';

/**
 * Clones (extension). `full`: every disk copied (qemu-img convert), independent of its source.
 * `linked`: every disk a new qcow2 overlay whose backing file is the source disk, which from then on
 * can be neither deleted nor written (started) while the overlay exists.
 */
export const CloneMode = Type.Union([Type.Literal('full'), Type.Literal('linked')]);
export type CloneMode = Static<typeof CloneMode>;

/** POST /api/vms/{vm_id}/clone: the new VM's name; its disks are named `<name>-disk<N>`. */
export const CloneVmBody = Type.Object(
  {
    name: Type.String({ pattern: VM_NAME_PATTERN, minLength: 1, maxLength: 57, description: 'at most 57 characters: its disks are named <name>-disk<N>' }),
    mode: CloneMode,
  },
  { additionalProperties: false },
);
export type CloneVmBody = Static<typeof CloneVmBody>;

/** POST /api/disks/{disk_id}/clone: the new managed disk's name. */
export const CloneDiskBody = Type.Object(
  {
    name: Type.String({ pattern: DISK_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    mode: CloneMode,
  },
  { additionalProperties: false },
);
export type CloneDiskBody = Static<typeof CloneDiskBody>;
