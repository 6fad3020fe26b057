import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';

/** What a task does. */
export const TaskKind = Type.Union([
  Type.Literal('disk.create'),
  Type.Literal('disk.resize'),
  Type.Literal('disk.clone'),
  Type.Literal('disk.convert'),
  Type.Literal('disk.import'),
  Type.Literal('vm.snapshot'),
  Type.Literal('vm.revert'),
  Type.Literal('vm.snapshot.delete'),
  Type.Literal('vm.clone'),
  // backups (issue 13)
  Type.Literal('backup.create'),
  Type.Literal('backup.verify'),
  Type.Literal('backup.restore'),
  Type.Literal('backup.delete'),
  Type.Literal('backup.import'),
  Type.Literal('backup.schedule'),
  // service and autostart (issue 15)
  Type.Literal('vm.autostart'),
  Type.Literal('host.shutdown-vms'),
  // images and templates (issue 12)
  Type.Literal('image.download'),
  Type.Literal('vm.create'),
]);
export type TaskKind = Static<typeof TaskKind>;

export const TaskStatus = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
export type TaskStatus = Static<typeof TaskStatus>;

/** The statuses a task ends in. */
export const TASK_DONE: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

/** A long operation (disk creation, resize, snapshot, clone, import, ...), with its progress. */
export const Task = Type.Object(
  {
    id: Id,
    kind: TaskKind,
    status: TaskStatus,
    progress: Type.Number({ minimum: 0, maximum: 1 }),
    bytesDone: Type.Integer({ minimum: 0 }),
    bytesTotal: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'null while unknown' }),
    target: Type.Object(
      { vm: Type.Union([Id, Type.Null()]), disk: Type.Union([Id, Type.Null()]) },
      { additionalProperties: false, description: 'The VM and/or disk the task works on' },
    ),
    createdAt: Timestamp,
    startedAt: Type.Union([Timestamp, Type.Null()]),
    endedAt: Type.Union([Timestamp, Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()]),
    result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'What the task made, e.g. { disk }' }),
  },
  { additionalProperties: false, $id: 'Task' },
);
export type Task = Static<typeof Task>;

export const TaskEnvelope = Type.Object({ task: Task }, { additionalProperties: false });
export type TaskEnvelope = Static<typeof TaskEnvelope>;
export const TaskListEnvelope = Type.Object({ tasks: Type.Array(Task) }, { additionalProperties: false });
export type TaskListEnvelope = Static<typeof TaskListEnvelope>;

export const TaskIdParams = Type.Object({ task_id: PathId }, { additionalProperties: false });
export type TaskIdParams = Static<typeof TaskIdParams>;

export const TaskListQuery = Type.Object(
  {
    vm: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    disk: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: 'at most this many (default 100, max 1000)' })),
  },
  { additionalProperties: false },
);
export type TaskListQuery = Static<typeof TaskListQuery>;
