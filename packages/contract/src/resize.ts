import { Type, type Static } from '@sinclair/typebox';
import { MAX_DISK_SIZE_GB } from './disks.js';
import { Task } from './tasks.js';

/** POST /api/disks/{disk_id}/resize: the new size in GB (GiB, as at creation); only growing is accepted. */
export const ResizeDiskBody = Type.Object(
  {
    size: Type.Integer({ minimum: 1, maximum: MAX_DISK_SIZE_GB, description: 'GB; larger than the disk is now' }),
  },
  { additionalProperties: false },
);
export type ResizeDiskBody = Static<typeof ResizeDiskBody>;

/** 202: the `disk.resize` task; the disk's `size` changes when it succeeds (`disk.updated`). */
export const ResizeDiskEnvelope = Type.Object({ task: Task }, { additionalProperties: false });
export type ResizeDiskEnvelope = Static<typeof ResizeDiskEnvelope>;
