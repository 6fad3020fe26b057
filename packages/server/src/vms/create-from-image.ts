import { DISK_NAME_PATTERN, type CloudInitBody, type CreateVmBody, type Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskContext, TaskService } from '../tasks/service.js';
import { publicVm, requireVm, type VmContext } from './context.js';
import type { VmRepo } from './repo.js';

const GiB = 1024 ** 3;
const PARTIAL = '.part';
const DISK_NAME = new RegExp(DISK_NAME_PATTERN);

/** A new VM's columns but id, VNC port and MAC (VmService checks the body and inserts the row). */
export type NewVmColumns = Omit<Parameters<VmRepo['insert']>[0], 'id' | 'vnc_port' | 'mac' | 'created_at'>;

/** What the flow needs of the images library (images/service.ts and images/repo.ts, wired in app.ts). */
export interface ImageSource {
  /** The image, or 404 IMAGE_NOT_FOUND. */
  require(name: string): { name: string; path: string; virtualSize: number };
  /** Marks the image as read by the task (not deleted meanwhile) until the returned function is called. */
  use(name: string): () => void;
  /** Records, in the disk's transaction, that the managed disk is a qcow2 overlay on the image. */
  recordOverlay(diskId: string, image: { name: string; path: string }, at: string): void;
}

/**
 * New VM from an image (issue 12): `POST /api/vms { name, cpus, memory, image, diskSize?,
 * linkedDisk?, cloudInit?, ...hardware }` → 202 { task } (kind `vm.create`). Everything is checked
 * before anything is made (the VM's body, the image, the disk name `<name>-disk0` and its file,
 * diskSize not below the image's virtual size, the cloud-init config); the task then writes the
 * disk under `<file>.part` (a qcow2 overlay whose backing file is the image, or with `linkedDisk:
 * false` a full self-contained copy), grows it to diskSize, moves it to its name and, in one
 * transaction, registers the disk (and its image backing), the VM, the attachment and the
 * cloud-init config: a failure at any step leaves no VM row, disk row or file.
 */
export class CreateFromImage {
  constructor(
    private readonly deps: {
      ctx: VmContext;
      tasks: TaskService;
      images: ImageTool;
      library: ImageSource;
      /** The managed disks' directory. */
      dir: string;
      /** Names (`vm:<name>`, `disk:<name>`) that tasks in flight will take: shared with clones, imports, conversions. */
      reserved: Set<string>;
      /** cloud-init (issue 12): checks a config before anything is made (throws a 4xx AppError). */
      validateCloudInit?: (body: CloudInitBody) => void;
      /** cloud-init (issue 12): stores the VM's config, last, inside the transaction that makes the VM. */
      applyCloudInit?: (vmId: string, body: CloudInitBody) => void;
    },
  ) {}

  /**
   * Called by VmService.create once the VM's own body passed its checks; `insertVm` inserts that
   * VM (a free port, a new MAC) and returns its id. Throws every refusal before the task starts.
   */
  start(body: CreateVmBody, insertVm: (at: string) => string): { task: Task } {
    const { ctx, library, reserved, dir } = this.deps;
    if (body.image === undefined) throw new AppError('VALIDATION', 'image is required');
    if (body.cloudInit !== undefined) {
      if (!this.deps.applyCloudInit) throw new AppError('VALIDATION', 'cloudInit is not available yet on this server: create the VM, then configure cloud-init');
      this.deps.validateCloudInit?.(body.cloudInit);
    }
    if (reserved.has(`vm:${body.name}`)) throw new AppError('NAME_TAKEN', `A VM named ${body.name} already exists`);
    const image = library.require(body.image);
    const imageGb = Math.max(1, Math.ceil(image.virtualSize / GiB));
    if (body.diskSize !== undefined && body.diskSize * GiB < image.virtualSize) {
      throw new AppError('VALIDATION', `diskSize ${body.diskSize} GB is smaller than the image ${image.name} (${image.virtualSize} bytes, ${imageGb} GB): a disk is never smaller than its image`);
    }
    const sizeGb = body.diskSize ?? imageGb;
    const linked = body.linkedDisk ?? true;
    const diskName = `${body.name}-disk0`;
    if (!DISK_NAME.test(diskName)) throw new AppError('VALIDATION', `The disk name ${diskName} is too long; choose a shorter VM name`);
    if (ctx.disks.nameTaken(diskName) || reserved.has(`disk:${diskName}`)) throw new AppError('NAME_TAKEN', `A disk named ${diskName} already exists`);
    const file = path.join(dir, `${diskName}.qcow2`);
    if (fs.existsSync(file) || fs.existsSync(file + PARTIAL)) throw new AppError('NAME_TAKEN', `A file named ${path.basename(file)} already exists in the disk directory`);

    const names = [`vm:${body.name}`, `disk:${diskName}`];
    for (const n of names) reserved.add(n);
    const unuse = library.use(image.name);
    const release = () => {
      unuse();
      for (const n of names) reserved.delete(n);
    };
    try {
      const task = this.deps.tasks.start('vm.create', {}, async (tctx) => {
        try {
          return await this.run({ body, image, linked, sizeGb, diskName, file, insertVm }, tctx);
        } finally {
          release();
        }
      });
      return { task };
    } catch (err) {
      release();
      throw err;
    }
  }

  private async run(
    p: {
      body: CreateVmBody;
      image: { name: string; path: string; virtualSize: number };
      linked: boolean;
      sizeGb: number;
      diskName: string;
      file: string;
      insertVm: (at: string) => string;
    },
    tctx: TaskContext,
  ): Promise<Record<string, unknown>> {
    const { ctx, images, library } = this.deps;
    const part = p.file + PARTIAL;
    tctx.partial(part);
    if (p.linked) {
      await images.overlay(part, { file: p.image.path, format: 'qcow2' }, tctx.signal);
    } else {
      tctx.progress(0, p.image.virtualSize);
      await images.copy({ file: p.image.path, format: 'qcow2' }, part, {
        signal: tctx.signal,
        progress: (d) => tctx.progress(Math.min(d, p.image.virtualSize), p.image.virtualSize),
      });
    }
    if (tctx.signal.aborted) throw new Error('cancelled');
    if (p.sizeGb * GiB > p.image.virtualSize) await images.resize(part, 'qcow2', p.sizeGb, tctx.signal);
    if (tctx.signal.aborted) throw new Error('cancelled');
    fs.chmodSync(part, 0o600);
    if (ctx.disks.nameTaken(p.diskName)) throw new AppError('NAME_TAKEN', `A disk named ${p.diskName} was created meanwhile`);
    tctx.partial(p.file);
    fs.linkSync(part, p.file); // EEXIST rather than replace a file that appeared meanwhile
    fs.rmSync(part);
    tctx.kept(part);

    const diskId = crypto.randomUUID();
    const at = nowIso();
    const vmId = ctx.disks.transaction(() => {
      ctx.disks.insertReady({ id: diskId, name: p.diskName, size: p.sizeGb, format: 'qcow2', path: p.file, created_at: at });
      if (p.linked) library.recordOverlay(diskId, p.image, at);
      const id = p.insertVm(at);
      ctx.repo.attachDisk(id, p.file, 'qcow2', at);
      if (p.body.cloudInit !== undefined) this.deps.applyCloudInit!(id, p.body.cloudInit);
      return id;
    });
    tctx.kept(p.file);
    tctx.target({ vm: vmId, disk: diskId });
    const disk = ctx.disks.get(diskId);
    if (disk) ctx.bus.publish({ type: 'disk.created', disk });
    ctx.bus.publish({ type: 'vm.created', vm: publicVm(requireVm(ctx, vmId)) });
    return { vm: vmId, disk: diskId };
  }
}
