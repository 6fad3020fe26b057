import { Type, type Static } from '@sinclair/typebox';
import { Id } from './common.js';
import { Backup } from './backups.js';
import { Disk } from './disks.js';
import { Task } from './tasks.js';
import { Vm } from './vms.js';

/**
 * Server-Sent Events on GET /api/events. Each SSE `event:` name is the event's `type`; `data` is the
 * event as JSON.
 */
export const VmCreatedEvent = Type.Object({ type: Type.Literal('vm.created'), vm: Vm }, { additionalProperties: false });
export const VmUpdatedEvent = Type.Object({ type: Type.Literal('vm.updated'), vm: Vm }, { additionalProperties: false });
export const VmDeletedEvent = Type.Object({ type: Type.Literal('vm.deleted'), id: Id }, { additionalProperties: false });
export const DiskCreatedEvent = Type.Object({ type: Type.Literal('disk.created'), disk: Disk }, { additionalProperties: false });
export const DiskUpdatedEvent = Type.Object({ type: Type.Literal('disk.updated'), disk: Disk }, { additionalProperties: false });
export const DiskDeletedEvent = Type.Object({ type: Type.Literal('disk.deleted'), id: Id }, { additionalProperties: false });
export const IsoChangedEvent = Type.Object({ type: Type.Literal('iso.changed') }, { additionalProperties: false });
export const TaskCreatedEvent = Type.Object({ type: Type.Literal('task.created'), task: Task }, { additionalProperties: false });
/** A task's status or progress changed; at most 4 a second per task, its last state always sent. */
export const TaskUpdatedEvent = Type.Object({ type: Type.Literal('task.updated'), task: Task }, { additionalProperties: false });

// backups (issue 13): a backup listed, removed (deleted or merged away), or a backup that failed
export const BackupCreatedEvent = Type.Object({ type: Type.Literal('backup.created'), backup: Backup }, { additionalProperties: false });
export const BackupDeletedEvent = Type.Object({ type: Type.Literal('backup.deleted'), id: Id }, { additionalProperties: false });
export const BackupFailedEvent = Type.Object(
  { type: Type.Literal('backup.failed'), vm: Id, vmName: Type.String(), task: Id, error: Type.String(), schedule: Type.Union([Id, Type.Null()]) },
  { additionalProperties: false },
);

export const ServerEvent = Type.Union([
  VmCreatedEvent,
  VmUpdatedEvent,
  VmDeletedEvent,
  DiskCreatedEvent,
  DiskUpdatedEvent,
  DiskDeletedEvent,
  IsoChangedEvent,
  TaskCreatedEvent,
  TaskUpdatedEvent,
  BackupCreatedEvent,
  BackupDeletedEvent,
  BackupFailedEvent,
]);
export type ServerEvent = Static<typeof ServerEvent>;
export type ServerEventType = ServerEvent['type'];

/** Every event type, in the order above. */
export const SERVER_EVENT_TYPES = [
  'vm.created',
  'vm.updated',
  'vm.deleted',
  'disk.created',
  'disk.updated',
  'disk.deleted',
  'iso.changed',
  'task.created',
  'task.updated',
  'backup.created',
  'backup.deleted',
  'backup.failed',
] as const satisfies readonly ServerEventType[];
