import { Type, type Static } from '@sinclair/typebox';
import { PathId, Timestamp } from './common.js';
import { Task } from './tasks.js';
import { VM_NAME_PATTERN } from './vms.js';

/**
 * Snapshot names follow the VM name rule. The server also refuses a name of digits only: QEMU looks
 * an internal snapshot up by its numeric id before its name, so "1" could mean another snapshot.
 */
export const SNAPSHOT_NAME_PATTERN = VM_NAME_PATTERN;

/** An internal (qcow2) snapshot of all of a VM's disks, with the server's own metadata. */
export const Snapshot = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    createdAt: Timestamp,
    vmState: Type.Boolean({ description: 'The RAM and device state was saved too (taken from a running VM with includeMemory)' }),
    parent: Type.Union([Type.String(), Type.Null()], { description: 'The snapshot this one was taken on top of (a tree through parent)' }),
    current: Type.Boolean({ description: "The VM's disks descend from this snapshot (the last taken or reverted to)" }),
    sizeBytes: Type.Integer({ minimum: 0, description: 'Bytes of saved VM state (0 for a disk-only snapshot)' }),
    disks: Type.Array(Type.String(), { description: 'The images the snapshot is in, in attach order' }),
  },
  { additionalProperties: false, $id: 'Snapshot' },
);
export type Snapshot = Static<typeof Snapshot>;

export const SnapshotListEnvelope = Type.Object({ snapshots: Type.Array(Snapshot) }, { additionalProperties: false });
export type SnapshotListEnvelope = Static<typeof SnapshotListEnvelope>;

export const CreateSnapshotBody = Type.Object(
  {
    name: Type.String({ pattern: SNAPSHOT_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    includeMemory: Type.Optional(Type.Boolean({ description: 'Save the RAM state too (running VM only)' })),
  },
  { additionalProperties: false },
);
export type CreateSnapshotBody = Static<typeof CreateSnapshotBody>;

export const SnapshotParams = Type.Object({ vm_id: PathId, name: PathId }, { additionalProperties: false });
export type SnapshotParams = Static<typeof SnapshotParams>;

/** What starting a snapshot task answers (202). */
export const SnapshotTaskEnvelope = Type.Object({ task: Task }, { additionalProperties: false });
export type SnapshotTaskEnvelope = Static<typeof SnapshotTaskEnvelope>;
