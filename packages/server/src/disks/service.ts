import type { CreateDiskBody, Disk, Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { EventBus } from '../events/bus.js';
import { AppError, errorMessage, isAppError } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import type { Logger } from '../lib/log.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskContext, TaskService } from '../tasks/service.js';
import type { DiskRepo } from './repo.js';
import { refuseBase } from './chain.js';

/** The file name extension of a managed disk of each format. */
export const EXTENSIONS = { qcow2: 'qcow2', raw: 'img', vmdk: 'vmdk' } as const;
const PARTIAL = '.part';

/** Managed disk images in $DATA_DIR/disks, created by qemu-img as a task. */
export class DiskService {
  constructor(
    private readonly repo: DiskRepo,
    private readonly qemuImg: ImageTool,
    private readonly bus: EventBus,
    private readonly tasks: TaskService,
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  list(): Disk[] {
    return this.repo.list();
  }

  async get(id: string): Promise<Disk> {
    const disk = this.require(id);
    if (disk.status !== 'ready') return disk;
    try {
      // Always in the format the disk was created with: a guest may have rewritten its first sectors.
      return { ...disk, info: await this.qemuImg.info(disk.path, disk.format) };
    } catch (err) {
      // Too busy or too slow keep their own status; anything else means the file is not what we made.
      // The messages are the server's own, never qemu-img's.
      if (isAppError(err) && (err.code === 'RATE_LIMITED' || err.code === 'TOOL_TIMEOUT')) throw err;
      const why = isAppError(err) ? err.message : 'it could not be read';
      if (!isAppError(err)) this.log.warn({ diskId: id, err: errorMessage(err) }, 'reading a disk image failed');
      throw new AppError('IMAGE_UNREADABLE', `Cannot read the image of disk ${disk.name}: ${why}`);
    }
  }

  /** Registers the disk at once (status creating) and runs qemu-img create as a `disk.create` task. */
  create(body: CreateDiskBody): { disk: Disk; task: Task } {
    const file = path.join(this.dir, `${body.name}.${EXTENSIONS[body.format]}`);
    if (this.repo.nameTaken(body.name)) throw new AppError('NAME_TAKEN', `A disk named ${body.name} already exists`);
    if (fs.existsSync(file) || fs.existsSync(file + PARTIAL)) {
      throw new AppError('NAME_TAKEN', `A file named ${path.basename(file)} already exists in the disk directory`);
    }
    const id = crypto.randomUUID();
    this.repo.insert({ id, name: body.name, size: body.size, format: body.format, path: file, created_at: nowIso() });
    const disk = this.require(id);
    this.bus.publish({ type: 'disk.created', disk });
    const task = this.tasks.start('disk.create', { disk: id }, (ctx) => this.build(id, file, body, ctx));
    return { disk, task };
  }

  /** qemu-img writes to a temporary name; the image appears under its real name only when complete. */
  private async build(id: string, file: string, body: CreateDiskBody, ctx: TaskContext): Promise<Record<string, unknown>> {
    const part = file + PARTIAL;
    ctx.partial(part);
    try {
      await this.qemuImg.create(part, body.format, body.size, ctx.signal);
      if (ctx.signal.aborted) throw new Error('cancelled');
      fs.chmodSync(part, 0o600); // a guest's disk is nobody else's business
      fs.renameSync(part, file);
      ctx.kept(part);
      this.repo.finish(id, 'ready', null, nowIso());
      return { disk: id };
    } catch (err) {
      fs.rmSync(part, { force: true });
      const why = ctx.signal.aborted ? 'the creation was cancelled' : `qemu-img create failed: ${errorMessage(err)}`;
      this.repo.finish(id, 'error', why, null);
      this.log.warn({ diskId: id, err: errorMessage(err) }, 'disk creation failed');
      throw new Error(`Disk ${body.name} was not created: ${why}`);
    } finally {
      const disk = this.repo.get(id);
      if (disk) this.bus.publish({ type: 'disk.updated', disk });
    }
  }

  delete(id: string): void {
    const disk = this.require(id);
    if (disk.attachedTo) {
      throw new AppError('DISK_IN_USE', `Disk ${disk.name} is attached to VM ${disk.attachedTo}; detach it first`);
    }
    if (disk.status === 'creating') throw new AppError('DISK_NOT_READY', `Disk ${disk.name} is still being created`);
    const busy = this.tasks.activeFor({ disk: id });
    if (busy) throw new AppError('DISK_IN_USE', `Disk ${disk.name} is in use by a ${busy.kind} task (${busy.id}); wait for it or cancel it`);
    refuseBase(this.repo, disk, 'deleted'); // clones and backing chains (issue 10)
    fs.rmSync(disk.path, { force: true });
    this.repo.delete(id);
    this.bus.publish({ type: 'disk.deleted', id });
  }

  /** A creation cut short by a crash: remove the partial file and mark the disk failed. */
  recover(): number {
    const stale = this.repo.byStatus('creating');
    for (const d of stale) {
      fs.rmSync(d.path + PARTIAL, { force: true });
      this.repo.finish(d.id, 'error', 'Creation was interrupted by a server restart', null);
    }
    return stale.length;
  }

  /**
   * Managed images are their owner's only (0600): one written by an older version, or by hand, with
   * group or other bits loses them. Opened without following a symlink. Returns how many changed.
   */
  restrictModes(): number {
    let changed = 0;
    for (const d of this.repo.list()) {
      let fd: number;
      try {
        fd = fs.openSync(d.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      } catch {
        continue; // missing, or not a plain file: start and attach refuse it anyway
      }
      try {
        const st = fs.fstatSync(fd);
        if (st.isFile() && (st.mode & 0o077) !== 0) {
          fs.fchmodSync(fd, st.mode & 0o700);
          changed++;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    return changed;
  }


  /** Waits for the tasks in flight (tests, shutdown). */
  idle(): Promise<void> {
    return this.tasks.idle();
  }

  private require(id: string): Disk {
    const disk = this.repo.get(id);
    if (!disk) throw new AppError('DISK_NOT_FOUND', `Disk not found: ${id}`);
    return disk;
  }
}
