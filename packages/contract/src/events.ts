import { Type, type Static } from '@sinclair/typebox';
import { Id } from './common.js';
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
] as const satisfies readonly ServerEventType[];
