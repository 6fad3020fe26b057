// Typed wrappers around every endpoint the UI uses. Shapes come from the contract package.
import type {
  ApiToken, AttachDiskBody, CloneDiskBody, ConvertDiskBody, ImportDiskBody, CloneVmBody, CreateSnapshotBody, Snapshot, SnapshotListEnvelope, AuditEntry, AuditList, AuthStatus, ConsoleTicket, CreatedToken, CreateTokenBody,
  CreateDiskBody, CreateVmBody, Disk, DiskEnvelope, DiskListEnvelope, DiskPathBody, Health, IsoListEnvelope, Iso,
  IsoPathBody, LoginBody, MessageBody, ShutdownBody, StartEnvelope, Task, TaskEnvelope, TaskListEnvelope,
  TokenListEnvelope, UpdateResourcesBody, Vm, VmEnvelope, VmListEnvelope,
} from '@qemu-manager/contract';
import type { AutostartBody } from '@qemu-manager/contract';
import type {
  CloudInit, CloudInitBody, CloudInitEnvelope, CreateImageBody, HardwareBody, Image, ImageCatalogueEntry, ImageCatalogueEnvelope, ImageListEnvelope,
} from '@qemu-manager/contract';
import type {
  Backup, BackupEnvelope, BackupListEnvelope, BackupSchedule, BackupScheduleEnvelope, BackupScheduleListEnvelope, BackupTarget,
  BackupTargetEnvelope, BackupTargetListEnvelope, CreateBackupBody, CreateBackupScheduleBody, CreateBackupTargetBody,
  PatchBackupScheduleBody, RestoreBackupBody,
} from '@qemu-manager/contract';
import { request } from './client';

const enc = encodeURIComponent;
const vmPath = (id: string, rest = '') => `/vms/${enc(id)}${rest}`;

export const vmsApi = {
  list: async (signal?: AbortSignal): Promise<Vm[]> =>
    (await request<VmListEnvelope>('GET', '/vms', undefined, { signal })).vms,
  get: async (id: string, signal?: AbortSignal): Promise<Vm> =>
    (await request<VmEnvelope>('GET', vmPath(id), undefined, { signal })).vm,
  create: async (body: CreateVmBody): Promise<Vm> => (await request<VmEnvelope>('POST', '/vms', body)).vm,
  remove: (id: string, force = false): Promise<MessageBody> =>
    request<MessageBody>('DELETE', vmPath(id, force ? '?force=true' : '')),
  start: (id: string): Promise<StartEnvelope> => request<StartEnvelope>('POST', vmPath(id, '/start')),
  stop: (id: string): Promise<MessageBody> => request<MessageBody>('POST', vmPath(id, '/stop')),
  shutdown: async (id: string, body: ShutdownBody = {}): Promise<Vm> =>
    (await request<VmEnvelope>('POST', vmPath(id, '/shutdown'), body)).vm,
  /** The server answers reboot like start: `{ vm, command }`. */
  reboot: async (id: string): Promise<Vm> => (await request<StartEnvelope>('POST', vmPath(id, '/reboot'))).vm,
  reset: async (id: string): Promise<Vm> => (await request<VmEnvelope>('POST', vmPath(id, '/reset'))).vm,
  pause: async (id: string): Promise<Vm> => (await request<VmEnvelope>('POST', vmPath(id, '/pause'))).vm,
  resume: async (id: string): Promise<Vm> => (await request<VmEnvelope>('POST', vmPath(id, '/resume'))).vm,
  updateResources: async (id: string, body: UpdateResourcesBody): Promise<Vm> =>
    (await request<VmEnvelope>('PATCH', vmPath(id, '/resources'), body)).vm,
  attachDisk: async (id: string, diskPath: string): Promise<Vm> =>
    (await request<VmEnvelope>('POST', vmPath(id, '/disks/attach'), { diskPath } satisfies AttachDiskBody)).vm,
  detachDisk: async (id: string, diskPath: string): Promise<Vm> =>
    (await request<VmEnvelope>('POST', vmPath(id, '/disks/detach'), { diskPath } satisfies DiskPathBody)).vm,
  mountIso: async (id: string, isoPath: string): Promise<Vm> =>
    (await request<VmEnvelope>('POST', vmPath(id, '/iso/mount'), { isoPath } satisfies IsoPathBody)).vm,
  unmountIso: async (id: string): Promise<Vm> => (await request<VmEnvelope>('POST', vmPath(id, '/iso/unmount'))).vm,
  /** A single-use ticket for one console WebSocket to this VM (needed when authentication is on). */
  consoleTicket: (id: string): Promise<ConsoleTicket> => request<ConsoleTicket>('POST', vmPath(id, '/console')),
  /** Serial console (issue 14): a single-use ticket for WS /api/vms/:id/serial. */
  serialTicket: (id: string): Promise<ConsoleTicket> => request<ConsoleTicket>('POST', vmPath(id, '/console'), { kind: 'serial' }),
  /** Clone a stopped VM (202 { task }; the task's result names the new VM). */
  clone: async (id: string, body: CloneVmBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', vmPath(id, '/clone'), body)).task,
  /** The whole autostart setting (admin; issue 15). */
  setAutostart: async (id: string, body: AutostartBody): Promise<Vm> =>
    (await request<VmEnvelope>('PUT', vmPath(id, '/autostart'), body)).vm,
  // issue 12: hardware options, templates, a VM from an image or a template
  /** Change hardware options while stopped; omitted fields keep their value. */
  setHardware: async (id: string, body: HardwareBody): Promise<Vm> =>
    (await request<VmEnvelope>('PUT', vmPath(id, '/hardware'), body)).vm,
  /** A create with `image` or `template` answers 202 { task } (kind vm.create; its result names the VM). */
  createFrom: async (body: CreateVmBody): Promise<Task> => (await request<TaskEnvelope>('POST', '/vms', body)).task,
  /** Turn a stopped VM into a template (its disks become read-only bases; it cannot start). */
  makeTemplate: async (id: string): Promise<Vm | undefined> =>
    (await request<Partial<VmEnvelope> | undefined>('POST', vmPath(id, '/template')))?.vm,
};

/** A VM's cloud-init config (issue 12): GET masks the password; PUT replaces; DELETE removes. */
export const cloudInitApi = {
  get: async (vmId: string, signal?: AbortSignal): Promise<CloudInit> =>
    (await request<CloudInitEnvelope>('GET', vmPath(vmId, '/cloud-init'), undefined, { signal })).cloudInit,
  put: async (vmId: string, body: CloudInitBody): Promise<CloudInit> =>
    (await request<CloudInitEnvelope>('PUT', vmPath(vmId, '/cloud-init'), body)).cloudInit,
  remove: (vmId: string): Promise<unknown> => request<unknown>('DELETE', vmPath(vmId, '/cloud-init')),
};

/** The image library (issue 12). */
export const imagesApi = {
  list: async (signal?: AbortSignal): Promise<Image[]> =>
    (await request<ImageListEnvelope>('GET', '/images', undefined, { signal })).images,
  catalogue: async (signal?: AbortSignal): Promise<ImageCatalogueEntry[]> =>
    (await request<ImageCatalogueEnvelope>('GET', '/images/catalogue', undefined, { signal })).catalogue,
  /** Download from a URL: 202 { task } (kind image.download). */
  download: async (body: CreateImageBody): Promise<Task> => (await request<TaskEnvelope>('POST', '/images', body)).task,
  remove: (name: string): Promise<unknown> => request<unknown>('DELETE', `/images/${enc(name)}`),
};

export const disksApi = {
  list: async (signal?: AbortSignal): Promise<Disk[]> =>
    (await request<DiskListEnvelope>('GET', '/disks', undefined, { signal })).disks,
  get: async (id: string, signal?: AbortSignal): Promise<Disk> =>
    (await request<DiskEnvelope>('GET', `/disks/${enc(id)}`, undefined, { signal })).disk,
  create: async (body: CreateDiskBody): Promise<Disk> => (await request<DiskEnvelope>('POST', '/disks', body)).disk,
  remove: (id: string): Promise<MessageBody> => request<MessageBody>('DELETE', `/disks/${enc(id)}`),
  // storage (issue 10): each answers 202 { task }
  resize: async (id: string, size: number): Promise<Task> =>
    (await request<TaskEnvelope>('POST', `/disks/${enc(id)}/resize`, { size })).task,
  clone: async (id: string, body: CloneDiskBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', `/disks/${enc(id)}/clone`, body)).task,
  /** Download an image (or an .ova) into new disk(s); the task's result names them. */
  importFromUrl: async (body: ImportDiskBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', '/disks/import', body)).task,
  /** A new disk with this one's content in another format; this one stays. */
  convert: async (id: string, body: ConvertDiskBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', `/disks/${enc(id)}/convert`, body)).task,
};

/** A VM's internal (qcow2) snapshots; changes are tasks (202 { task }). */
export const snapshotsApi = {
  list: async (vmId: string, signal?: AbortSignal): Promise<Snapshot[]> =>
    (await request<SnapshotListEnvelope>('GET', vmPath(vmId, '/snapshots'), undefined, { signal })).snapshots,
  create: async (vmId: string, body: CreateSnapshotBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', vmPath(vmId, '/snapshots'), body)).task,
  revert: async (vmId: string, name: string): Promise<Task> =>
    (await request<TaskEnvelope>('POST', vmPath(vmId, `/snapshots/${enc(name)}/revert`))).task,
  remove: async (vmId: string, name: string): Promise<Task> =>
    (await request<TaskEnvelope>('DELETE', vmPath(vmId, `/snapshots/${enc(name)}`))).task,
};

export const isosApi = {
  list: async (signal?: AbortSignal): Promise<Iso[]> =>
    (await request<IsoListEnvelope>('GET', '/isos', undefined, { signal })).isos,
  remove: (name: string): Promise<MessageBody> => request<MessageBody>('DELETE', `/isos/${enc(name)}`),
};

export const authApi = {
  status: (signal?: AbortSignal): Promise<AuthStatus> => request<AuthStatus>('GET', '/auth/status', undefined, { signal }),
  login: (password: string): Promise<MessageBody> => request<MessageBody>('POST', '/auth/login', { password } satisfies LoginBody),
  logout: (): Promise<MessageBody> => request<MessageBody>('POST', '/auth/logout'),
};

/** Admin only: a read-scope token gets 403 here. */
export const tokensApi = {
  list: async (signal?: AbortSignal): Promise<ApiToken[]> =>
    (await request<TokenListEnvelope>('GET', '/tokens', undefined, { signal })).tokens,
  /** The answer carries the secret; it is never available again. */
  create: (body: CreateTokenBody): Promise<CreatedToken> => request<CreatedToken>('POST', '/tokens', body),
  revoke: (id: string): Promise<MessageBody> => request<MessageBody>('DELETE', `/tokens/${enc(id)}`),
};

/** Admin only. Newest first; `before` pages to entries with a smaller id. */
export const auditApi = {
  list: async (opts: { limit?: number; before?: number } = {}, signal?: AbortSignal): Promise<AuditEntry[]> => {
    const q = new URLSearchParams({ limit: String(opts.limit ?? 100) });
    if (opts.before !== undefined) q.set('before', String(opts.before));
    return (await request<AuditList>('GET', `/audit?${q}`, undefined, { signal })).entries;
  },
};

/** Which tasks to list: all of them, one VM's or one disk's. */
export interface TaskFilter {
  vm?: string;
  disk?: string;
  limit?: number;
}

/** Long operations. Newest first. Cancelling needs admin access. */
export const tasksApi = {
  list: async (filter: TaskFilter = {}, signal?: AbortSignal): Promise<Task[]> => {
    const q = new URLSearchParams();
    if (filter.vm) q.set('vm', filter.vm);
    if (filter.disk) q.set('disk', filter.disk);
    if (filter.limit !== undefined) q.set('limit', String(filter.limit));
    const qs = q.toString();
    return (await request<TaskListEnvelope>('GET', `/tasks${qs ? `?${qs}` : ''}`, undefined, { signal })).tasks;
  },
  get: async (id: string, signal?: AbortSignal): Promise<Task> =>
    (await request<TaskEnvelope>('GET', `/tasks/${enc(id)}`, undefined, { signal })).task,
  cancel: async (id: string): Promise<Task> => (await request<TaskEnvelope>('DELETE', `/tasks/${enc(id)}`)).task,
};

export const systemApi = {
  health: (signal?: AbortSignal): Promise<Health> => request<Health>('GET', '/health', undefined, { signal }),
};

// ---- backups (issue 13): changes are tasks (202 { task }) except targets and schedules ----

/** Which backups to list: all, one VM's, one target's. */
export interface BackupFilter {
  vm?: string;
  target?: string;
}

export const backupsApi = {
  list: async (filter: BackupFilter = {}, signal?: AbortSignal): Promise<Backup[]> => {
    const q = new URLSearchParams();
    if (filter.vm) q.set('vm', filter.vm);
    if (filter.target) q.set('target', filter.target);
    const qs = q.toString();
    return (await request<BackupListEnvelope>('GET', `/backups${qs ? `?${qs}` : ''}`, undefined, { signal })).backups;
  },
  get: async (id: string, signal?: AbortSignal): Promise<Backup> =>
    (await request<BackupEnvelope>('GET', `/backups/${enc(id)}`, undefined, { signal })).backup,
  create: async (vmId: string, body: CreateBackupBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', vmPath(vmId, '/backups'), body)).task,
  verify: async (id: string): Promise<Task> => (await request<TaskEnvelope>('POST', `/backups/${enc(id)}/verify`)).task,
  restore: async (id: string, body: RestoreBackupBody): Promise<Task> =>
    (await request<TaskEnvelope>('POST', `/backups/${enc(id)}/restore`, body)).task,
  remove: async (id: string): Promise<Task> => (await request<TaskEnvelope>('DELETE', `/backups/${enc(id)}`)).task,
  import: async (path: string): Promise<Task> => (await request<TaskEnvelope>('POST', '/backups/import', { path })).task,
};

export const backupTargetsApi = {
  list: async (signal?: AbortSignal): Promise<BackupTarget[]> =>
    (await request<BackupTargetListEnvelope>('GET', '/backup-targets', undefined, { signal })).targets,
  create: async (body: CreateBackupTargetBody): Promise<BackupTarget> =>
    (await request<BackupTargetEnvelope>('POST', '/backup-targets', body)).target,
  remove: (name: string): Promise<unknown> => request<unknown>('DELETE', `/backup-targets/${enc(name)}`),
};

export const backupSchedulesApi = {
  list: async (signal?: AbortSignal): Promise<BackupSchedule[]> =>
    (await request<BackupScheduleListEnvelope>('GET', '/backup-schedules', undefined, { signal })).schedules,
  create: async (body: CreateBackupScheduleBody): Promise<BackupSchedule> =>
    (await request<BackupScheduleEnvelope>('POST', '/backup-schedules', body)).schedule,
  update: async (id: string, body: PatchBackupScheduleBody): Promise<BackupSchedule> =>
    (await request<BackupScheduleEnvelope>('PATCH', `/backup-schedules/${enc(id)}`, body)).schedule,
  remove: (id: string): Promise<unknown> => request<unknown>('DELETE', `/backup-schedules/${enc(id)}`),
  run: async (id: string): Promise<Task> => (await request<TaskEnvelope>('POST', `/backup-schedules/${enc(id)}/run`)).task,
};
