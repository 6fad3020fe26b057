import { Type, type Static } from '@sinclair/typebox';

/** ISO-8601 timestamp in UTC, e.g. 2025-11-28T14:00:00.000Z. */
export const Timestamp = Type.String({ format: 'date-time' });

/** A UUID (v4) used for VM and disk ids. */
export const Id = Type.String({ format: 'uuid' });

/**
 * An id as a path names it: any text (bounded). An id that names nothing, whatever its form, is a
 * 404 (VM_NOT_FOUND, DISK_NOT_FOUND, NOT_FOUND), never a validation error.
 */
export const PathId = Type.String({ minLength: 1 });

/** Stable error codes the server can answer with. */
export const ErrorCodes = [
  'BAD_REQUEST',
  'VALIDATION',
  'NOT_FOUND',
  'VM_NOT_FOUND',
  'DISK_NOT_FOUND',
  'VM_NOT_STOPPED',
  'VM_NOT_RUNNING',
  'VM_BUSY',
  'NAME_TAKEN',
  'DISK_IN_USE',
  'ISO_IN_USE',
  'DISK_NOT_READY',
  'DISK_NOT_ATTACHED',
  'TASK_NOT_FOUND',
  'TASK_FINISHED',
  'PATH_NOT_ALLOWED',
  'IMAGE_NOT_ALLOWED',
  'FILE_NOT_FOUND',
  'FILE_MISSING',
  'IMAGE_UNREADABLE',
  'NOT_A_REGULAR_FILE',
  'NO_FREE_PORT',
  'QEMU_START_FAILED',
  'QEMU_ERROR',
  'QEMU_UNREACHABLE',
  'TIMEOUT',
  'REQUEST_TIMEOUT',
  'TOOL_TIMEOUT',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'HEADERS_TOO_LARGE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'HOST_NOT_ALLOWED',
  'ORIGIN_NOT_ALLOWED',
  'RATE_LIMITED',
  'LIMIT_EXCEEDED',
  'INTERNAL',
  // disk resize (issue 10)
  'DISK_CANNOT_SHRINK',
  'DISK_NOT_RESIZABLE',
  // snapshots (issue 10)
  'SNAPSHOT_NOT_FOUND',
  'SNAPSHOT_UNSUPPORTED',
  // clones and backing chains (issue 10): a disk other disks back onto
  'DISK_HAS_CHILDREN',
  // backups (issue 13)
  'BACKUP_NOT_FOUND',
  'TARGET_NOT_FOUND',
  'TARGET_IN_USE',
  'SCHEDULE_NOT_FOUND',
  // images (issue 12)
  'IMAGE_NOT_FOUND',
  'IMAGE_IN_USE',
  // templates (issue 12): a template cannot start and its disks are read-only bases
  'VM_IS_TEMPLATE',
  // the guest agent (issue 14): it does not answer (or refused) where the request needs it
  'AGENT_UNAVAILABLE',
  // networks (issue 11)
  'NETWORK_NOT_FOUND',
  'NETWORK_IN_USE',
  'NETWORK_CONFLICT',
  'BRIDGE_INVALID',
  'NETWORKS_UNAVAILABLE',
  'NETWORK_SETUP_FAILED',
  'NIC_NOT_FOUND',
  'FORWARD_NOT_FOUND',
  'PORT_IN_USE',
  'FORWARD_UNSUPPORTED',
  'MAC_IN_USE',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

/** The v1 error body, plus a stable machine-readable `code` (extension). */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Human-readable message' }),
    timestamp: Timestamp,
    code: Type.Optional(Type.Unsafe<ErrorCode>({ type: 'string', enum: [...ErrorCodes], description: 'Stable error code, e.g. VM_NOT_FOUND' })),
  },
  { $id: 'ErrorBody' },
);
export type ErrorBody = Static<typeof ErrorBody>;

export const MessageBody = Type.Object({ message: Type.String() }, { additionalProperties: false });
export type MessageBody = Static<typeof MessageBody>;

