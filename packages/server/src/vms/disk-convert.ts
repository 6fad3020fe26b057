import type { ConvertDiskBody, DiskFormat, Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { refuseTemplate } from './template.js'; // templates (issue 12)
import { AppError } from '../lib/errors.js';
import { imageLayers } from '../lib/image-check.js';
import { nowIso } from '../lib/time.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskService } from '../tasks/service.js';
import { requireAllowed, requireVm, type VmContext } from './context.js';
import { backingRule } from './image-rules.js';

const EXTENSIONS: Record<DiskFormat, string> = { qcow2: 'qcow2', raw: 'img', vmdk: 'vmdk' };
const PARTIAL = '.part';

/**
 * Disk conversion (issue 10): `POST /api/disks/{disk_id}/convert { format, name }` makes a new
 * managed disk `name` in `format` with the source's content. The source must not be written
 * meanwhile: it is a ready disk (a linked clone is converted flattened into a self-contained one), attached to no VM or to a stopped one (whose
 * configure lock is held until the task ends, so it cannot start). The copy is the image tool's
 * safe one (every layer read unprivileged, lent read-only or over a read-only export, the new file lent to the tool
 * only while it runs, then checked self-contained); it is written to `<file>.part`, renamed when
 * complete and registered only then. A failed, cancelled or interrupted conversion leaves nothing.
 */
export class DiskConvertService {
  constructor(
    private readonly ctx: VmContext,
    private readonly tasks: TaskService,
    private readonly images: ImageTool,
    private readonly dir: string,
    /** Names (`disk:<name>`) that tasks in flight will take: shared with clones and imports. */
    private readonly reserved: Set<string>,
  ) {}

  async convert(diskId: string, body: ConvertDiskBody): Promise<{ task: Task }> {
    const { ctx } = this;
    const disk = ctx.disks.get(diskId);
    if (!disk) throw new AppError('DISK_NOT_FOUND', `Disk not found: ${diskId}`);
    const owner = disk.attachedTo ? requireVm(ctx, disk.attachedTo) : null;
    const lock = owner ? ctx.locks.hold(owner.id, 'configure') : null;
    let reserved = false;
    try {
      if (owner) requireAllowed(owner, 'configure', (status) => `Disk ${disk.name} is attached to VM ${owner.name}, which is ${status}; stop it first`);
      if (owner) refuseTemplate(owner, 'converted'); // templates (issue 12)
      if (disk.status !== 'ready') throw new AppError('DISK_NOT_READY', `Disk ${disk.name} is ${disk.status}, not ready`);
      const busy = this.tasks.activeFor({ disk: diskId });
      if (busy) throw new AppError('DISK_IN_USE', `Disk ${disk.name} is in use by a ${busy.kind} task (${busy.id}); wait for it or cancel it`);
      if (!fs.existsSync(disk.path)) throw new AppError('FILE_MISSING', `The disk file is missing: ${disk.path}`);
      // A linked clone is converted flattened (the copy reads its whole chain, every layer checked again).
      await imageLayers(ctx.storage, disk.path, disk.format, { checkBacking: backingRule(ctx, disk.path) });
      if (ctx.disks.nameTaken(body.name) || this.reserved.has(`disk:${body.name}`)) throw new AppError('NAME_TAKEN', `A disk named ${body.name} already exists`);
      const file = path.join(this.dir, `${body.name}.${EXTENSIONS[body.format]}`);
      if (fs.existsSync(file) || fs.existsSync(file + PARTIAL)) {
        throw new AppError('NAME_TAKEN', `A file named ${path.basename(file)} already exists in the disk directory`);
      }
      this.reserved.add(`disk:${body.name}`);
      reserved = true;
      const task = this.tasks.start('disk.convert', { disk: diskId }, async (tctx) => {
        try {
          const part = file + PARTIAL;
          tctx.partial(part);
          await this.images.copy({ file: disk.path, format: disk.format }, part, {
            signal: tctx.signal,
            progress: (done, total) => tctx.progress(done, total),
            checkBacking: backingRule(ctx, disk.path),
            format: body.format,
          });
          if (tctx.signal.aborted) throw new Error('cancelled');
          if (ctx.disks.nameTaken(body.name)) throw new AppError('NAME_TAKEN', `A disk named ${body.name} was created meanwhile`);
          tctx.partial(file);
          fs.linkSync(part, file); // EEXIST rather than replace a file that appeared meanwhile
          fs.rmSync(part);
          tctx.kept(part);
          const id = crypto.randomUUID();
          ctx.disks.insertReady({ id, name: body.name, size: disk.size, format: body.format, path: file, created_at: nowIso() });
          tctx.kept(file);
          const created = ctx.disks.get(id);
          if (created) ctx.bus.publish({ type: 'disk.created', disk: created });
          return { disk: id };
        } finally {
          this.reserved.delete(`disk:${body.name}`);
          lock?.release();
        }
      });
      return { task };
    } catch (err) {
      if (reserved) this.reserved.delete(`disk:${body.name}`);
      lock?.release();
      throw err;
    }
  }
}
