import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';
import { Task } from './tasks.js';
import { Vm, VM_NAME_PATTERN } from './vms.js';

/**
 * Backups (extension, issue 13). A backup is a self-describing directory
 * `<target>/<vm id>/<backup id>/` holding `manifest.json` and one qcow2 file per disk (`disk<N>.qcow2`):
 * a full copy, or for an incremental backup an overlay with only the changed clusters whose backing
 * file is the parent backup's file (`../<parent id>/disk<N>.qcow2`, format recorded), so any backup in
 * a chain reads with `qemu-img` alone. Creating, verifying, restoring, deleting (a merge when later
 * incrementals need it), importing and running a schedule are tasks.
 */

/** A name of a target or schedule: the VM name rule. */
export const BACKUP_NAME_PATTERN = VM_NAME_PATTERN;

/** Where backups are written: `$DATA_DIR/backups` (name `default`) or a directory the admin names. */
export const BackupTarget = Type.Object(
  {
    name: Type.String(),
    path: Type.String({ description: 'absolute real path of the directory' }),
    default: Type.Boolean({ description: 'the target `$DATA_DIR/backups`, always present, cannot be deleted' }),
    freeBytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'free space for the server (statfs), null when the directory cannot be read now' }),
    totalBytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    backups: Type.Integer({ minimum: 0, description: 'how many listed backups it holds' }),
  },
  { additionalProperties: false, $id: 'BackupTarget' },
);
export type BackupTarget = Static<typeof BackupTarget>;

export const BackupTargetEnvelope = Type.Object({ target: BackupTarget }, { additionalProperties: false });
export type BackupTargetEnvelope = Static<typeof BackupTargetEnvelope>;
export const BackupTargetListEnvelope = Type.Object({ targets: Type.Array(BackupTarget) }, { additionalProperties: false });
export type BackupTargetListEnvelope = Static<typeof BackupTargetListEnvelope>;

/** POST /api/backup-targets: an existing directory, absolute, outside the disk and ISO directories. */
export const CreateBackupTargetBody = Type.Object(
  {
    name: Type.String({ pattern: BACKUP_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    path: Type.String({ minLength: 1, maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export type CreateBackupTargetBody = Static<typeof CreateBackupTargetBody>;

export const BackupTargetParams = Type.Object({ target_name: PathId }, { additionalProperties: false });
export type BackupTargetParams = Static<typeof BackupTargetParams>;

export const BackupKind = Type.Union([Type.Literal('full'), Type.Literal('incremental')]);
export type BackupKind = Static<typeof BackupKind>;

/**
 * `ok`: complete (and verified when verifiedAt is set); `corrupt`: a verify found a file that does not
 * match its sha256 or fails `qemu-img check`; `missing`: a file or the directory is gone.
 */
export const BackupState = Type.Union([Type.Literal('ok'), Type.Literal('corrupt'), Type.Literal('missing')]);
export type BackupState = Static<typeof BackupState>;

/** One disk of a backup, as its manifest records it. */
export const BackupDisk = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: "the disk's place in the VM (attach order)" }),
    file: Type.String({ description: 'the file in the backup directory, e.g. disk0.qcow2' }),
    source: Type.String({ description: 'the path of the disk that was backed up' }),
    sourceFormat: Type.String(),
    virtualSize: Type.Integer({ minimum: 0 }),
    sizeBytes: Type.Integer({ minimum: 0, description: 'bytes of the stored file' }),
    sha256: Type.String(),
    backing: Type.Union([Type.String(), Type.Null()], { description: "relative path of the parent backup's file, for an incremental" }),
  },
  { additionalProperties: false },
);
export type BackupDisk = Static<typeof BackupDisk>;

export const Backup = Type.Object(
  {
    id: Id,
    vm: Id,
    vmName: Type.String(),
    target: Type.String({ description: 'the target name' }),
    createdAt: Timestamp,
    kind: BackupKind,
    parent: Type.Union([Id, Type.Null()], { description: 'the backup an incremental builds on' }),
    sizeBytes: Type.Integer({ minimum: 0, description: 'bytes of all its stored files' }),
    verifiedAt: Type.Union([Timestamp, Type.Null()]),
    state: BackupState,
    frozen: Type.Boolean({ description: "the guest's file systems were frozen (guest agent) for the point in time" }),
    disks: Type.Array(BackupDisk),
  },
  { additionalProperties: false, $id: 'Backup' },
);
export type Backup = Static<typeof Backup>;

export const BackupEnvelope = Type.Object({ backup: Backup }, { additionalProperties: false });
export type BackupEnvelope = Static<typeof BackupEnvelope>;
export const BackupListEnvelope = Type.Object({ backups: Type.Array(Backup) }, { additionalProperties: false });
export type BackupListEnvelope = Static<typeof BackupListEnvelope>;
export const BackupListQuery = Type.Object({ vm: Type.Optional(Type.String()), target: Type.Optional(Type.String()) }, { additionalProperties: false });
export type BackupListQuery = Static<typeof BackupListQuery>;
export const BackupIdParams = Type.Object({ backup_id: PathId }, { additionalProperties: false });
export type BackupIdParams = Static<typeof BackupIdParams>;

/**
 * The manifest.json of a backup directory: what a host needs to restore it without the database it
 * came from (schema 1).
 */
export const BackupManifest = Type.Object(
  {
    schema: Type.Literal(1),
    id: Id,
    kind: BackupKind,
    parent: Type.Union([Id, Type.Null()]),
    createdAt: Timestamp,
    frozen: Type.Boolean(),
    qemuVersion: Type.String(),
    vm: Vm,
    disks: Type.Array(BackupDisk),
  },
  { $id: 'BackupManifest' },
);
export type BackupManifest = Static<typeof BackupManifest>;

/** POST /api/vms/{vm_id}/backups. Default mode: incremental when the VM can have one, else full. */
export const CreateBackupBody = Type.Object(
  {
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'a target name (default: default)' })),
    mode: Type.Optional(BackupKind),
    // backups: engine (issue 13)
    speedLimit: Type.Optional(
      Type.Integer({ minimum: 65536, maximum: 1e12, description: 'bytes a second the copy of a running VM may read (QEMU job speed); default unlimited' }),
    ),
  },
  { additionalProperties: false },
);
export type CreateBackupBody = Static<typeof CreateBackupBody>;

/** POST /api/backups/{backup_id}/restore */
export const RestoreBackupBody = Type.Union([
  Type.Object({ as: Type.Literal('new'), name: Type.String({ pattern: VM_NAME_PATTERN, minLength: 1, maxLength: 57 }) }, { additionalProperties: false }),
  Type.Object({ as: Type.Literal('replace') }, { additionalProperties: false }),
]);
export type RestoreBackupBody = Static<typeof RestoreBackupBody>;

/** POST /api/backups/import: a backup directory copied from another host (under a target). */
export const ImportBackupBody = Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false });
export type ImportBackupBody = Static<typeof ImportBackupBody>;

/** Every request that starts a backup task answers 202 with it. */
export const BackupTaskEnvelope = Type.Object({ task: Task }, { additionalProperties: false });
export type BackupTaskEnvelope = Static<typeof BackupTaskEnvelope>;

/** What a schedule keeps (Proxmox's prune rules: each rule keeps the newest backup of each period). */
export const Retention = Type.Object(
  {
    keepLast: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    keepHourly: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    keepDaily: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    keepWeekly: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    keepMonthly: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
  },
  { additionalProperties: false },
);
export type Retention = Static<typeof Retention>;

export const BackupSchedule = Type.Object(
  {
    id: Id,
    name: Type.String(),
    vms: Type.Union([Type.Array(Id), Type.Literal('all')]),
    target: Type.String(),
    every: Type.String({ description: 'hourly | daily | weekly | a 5-field cron expression' }),
    at: Type.Union([Type.String(), Type.Null()], { description: 'HH:MM for daily/weekly (minute MM for hourly), server local time' }),
    retention: Retention,
    enabled: Type.Boolean(),
    nextRunAt: Type.Union([Timestamp, Type.Null()]),
    lastRunAt: Type.Union([Timestamp, Type.Null()]),
    lastTask: Type.Union([Id, Type.Null()]),
    lastStatus: Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Null()]),
    createdAt: Timestamp,
  },
  { additionalProperties: false, $id: 'BackupSchedule' },
);
export type BackupSchedule = Static<typeof BackupSchedule>;

export const BackupScheduleEnvelope = Type.Object({ schedule: BackupSchedule }, { additionalProperties: false });
export type BackupScheduleEnvelope = Static<typeof BackupScheduleEnvelope>;
export const BackupScheduleListEnvelope = Type.Object({ schedules: Type.Array(BackupSchedule) }, { additionalProperties: false });
export type BackupScheduleListEnvelope = Static<typeof BackupScheduleListEnvelope>;
export const BackupScheduleParams = Type.Object({ schedule_id: PathId }, { additionalProperties: false });
export type BackupScheduleParams = Static<typeof BackupScheduleParams>;

const scheduleFields = {
  name: Type.String({ pattern: BACKUP_NAME_PATTERN, minLength: 1, maxLength: 63 }),
  vms: Type.Union([Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 1000 }), Type.Literal('all')]),
  target: Type.String({ minLength: 1, maxLength: 63 }),
  every: Type.String({ minLength: 1, maxLength: 128 }),
  at: Type.Optional(Type.Union([Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$|^[0-5][0-9]$' }), Type.Null()])),
  retention: Retention,
  enabled: Type.Optional(Type.Boolean()),
};

export const CreateBackupScheduleBody = Type.Object(
  { ...scheduleFields, target: Type.Optional(scheduleFields.target) },
  { additionalProperties: false },
);
export type CreateBackupScheduleBody = Static<typeof CreateBackupScheduleBody>;

export const PatchBackupScheduleBody = Type.Partial(Type.Object(scheduleFields, { additionalProperties: false }), { additionalProperties: false, minProperties: 1 });
export type PatchBackupScheduleBody = Static<typeof PatchBackupScheduleBody>;
