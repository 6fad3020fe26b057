import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';
import { Task } from './tasks.js';

/** Disk names become file names: letters, digits, dot, dash, underscore; no leading dot. */
export const DISK_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';
export const MAX_DISK_SIZE_GB = 16384;

export const DiskFormat = Type.Union([Type.Literal('qcow2'), Type.Literal('raw'), Type.Literal('vmdk')]);
export type DiskFormat = Static<typeof DiskFormat>;

export const DiskStatus = Type.Union([Type.Literal('creating'), Type.Literal('ready'), Type.Literal('error')]);
export type DiskStatus = Static<typeof DiskStatus>;

/** Output of `qemu-img info --output=json` (the fields we rely on; others pass through). */
export const DiskInfo = Type.Object(
  {
    'virtual-size': Type.Integer(),
    filename: Type.String(),
    format: Type.String(),
    'actual-size': Type.Optional(Type.Integer()),
    'dirty-flag': Type.Optional(Type.Boolean()),
    'cluster-size': Type.Optional(Type.Integer()),
    'backing-filename': Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type DiskInfo = Static<typeof DiskInfo>;

export const Disk = Type.Object(
  {
    id: Id,
    name: Type.String(),
    size: Type.Integer({ description: 'GB' }),
    format: DiskFormat,
    path: Type.String(),
    status: DiskStatus,
    createdAt: Timestamp,
    createdAtCompleted: Type.Union([Timestamp, Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()], { description: 'Why creation failed (extension)' }),
    attachedTo: Type.Union([Type.String(), Type.Null()], { description: 'Id of the VM using it (extension)' }),
    info: Type.Optional(DiskInfo),
    // clones and backing chains (issue 10)
    backingFile: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'The managed disk this one is an overlay of (its path), or null (extension)' })),
    children: Type.Optional(Type.Array(Id, { description: 'Ids of the managed disks whose backing file this disk is (extension)' })),
  },
  { additionalProperties: false, $id: 'Disk' },
);
export type Disk = Static<typeof Disk>;

export const DiskIdParams = Type.Object({ disk_id: PathId }, { additionalProperties: false });
export type DiskIdParams = Static<typeof DiskIdParams>;

export const CreateDiskBody = Type.Object(
  {
    name: Type.String({ pattern: DISK_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    size: Type.Integer({ minimum: 1, maximum: MAX_DISK_SIZE_GB, description: 'GB' }),
    format: DiskFormat,
  },
  { additionalProperties: false },
);
export type CreateDiskBody = Static<typeof CreateDiskBody>;

export const DiskEnvelope = Type.Object({ disk: Disk }, { additionalProperties: false });
/** PUT /api/disks/upload/{name}: the new disk's name (checked by the server: the disk name rule). */
export const DiskUploadParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export type DiskUploadParams = Static<typeof DiskUploadParams>;
/** POST /api/disks: the v1 `{ disk }` (status creating), plus the task that creates it (extension). */
export const CreatedDiskEnvelope = Type.Object({ disk: Disk, task: Task }, { additionalProperties: false });
export type CreatedDiskEnvelope = Static<typeof CreatedDiskEnvelope>;
export type DiskEnvelope = Static<typeof DiskEnvelope>;
export const DiskListEnvelope = Type.Object({ disks: Type.Array(Disk) }, { additionalProperties: false });
export type DiskListEnvelope = Static<typeof DiskListEnvelope>;
