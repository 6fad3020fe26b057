import type { CloneDiskBody, CloneMode, CloneVmBody, CloudInitBody, DiskFormat, Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { imageLayers } from '../lib/image-check.js';
import { AppError } from '../lib/errors.js';
import { randomMac } from '../lib/mac.js';
import { lowestFreePort } from '../lib/ports.js';
import { nowIso } from '../lib/time.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskContext, TaskService } from '../tasks/service.js';
import { checkResources, publicVm, requireAllowed, requireVm, type VmContext } from './context.js';
import { backingRule, refuseIsoLibrary } from './image-rules.js';
import { hardwareColumns, hardwareOf, type HardwareSetting } from './hardware.js';
import type { OpLock } from './locks.js';

const EXTENSIONS: Record<DiskFormat, string> = { qcow2: 'qcow2', raw: 'img', vmdk: 'vmdk' };
const PARTIAL = '.part';
const GiB = 1024 ** 3;

/** One disk of a clone: where it comes from and where the copy (or overlay) goes. */
interface Planned {
  source: string;
  sourceFormat: DiskFormat;
  /** The managed disk it copies, if it is one (a linked clone backs onto it). */
  base: { id: string; path: string } | null;
  name: string;
  file: string;
  format: DiskFormat;
  sizeGb: number;
  bytes: number;
}

/**
 * Clones and backing chains (issue 10). A VM clone is a new VM (new id, MAC and VNC port, the same
 * CPUs, memory and CD medium) whose disks are new managed disks `<clone>-disk<N>`; a disk clone is
 * one new managed disk. `full` copies each image (qemu-img convert, with progress); `linked` makes
 * a qcow2 overlay whose backing file is the source disk, recorded in the chain table so the base
 * is never deleted or started while the overlay needs it. The source stays locked (its VM's
 * configure lock) until the task ends. Everything is written under temporary names and registered
 * in one transaction at the end: a failed, cancelled or interrupted clone leaves nothing behind.
 */
export class CloneService {
  constructor(
    private readonly ctx: VmContext,
    private readonly tasks: TaskService,
    private readonly images: ImageTool,
    private readonly dir: string,
    /** Names (`vm:<name>`, `disk:<name>`) that tasks in flight will take: shared with convert and import. */
    private readonly reserved: Set<string>,
    /**
     * Cloud-init (issue 12): a clone gets the source's config (under its own instance-id), and a VM
     * from a template the body's config over it; written in the transaction that registers the clone.
     */
    private readonly cloudInit?: { copy(from: string, to: string): boolean; set(id: string, body: CloudInitBody, opts: { emit: false }): unknown },
  ) {}

  /**
   * `as` (templates, issue 12): a VM made from a template is this clone under another task kind,
   * with its own CPUs, memory, hardware and (checked by the caller) cloud-init config.
   */
  async cloneVm(
    id: string,
    body: CloneVmBody,
    as?: { kind: 'vm.create'; cpus: number; memory: number; hardware: HardwareSetting; cloudInit?: CloudInitBody },
  ): Promise<{ task: Task }> {
    const { ctx } = this;
    const vm = requireVm(ctx, id);
    const lock = ctx.locks.hold(id, 'configure');
    const names: string[] = [];
    try {
      requireAllowed(vm, 'configure', (status) => `Cannot clone VM ${vm.name} while it is ${status}; stop it first`);
      if (ctx.repo.nameTaken(body.name) || this.reserved.has(`vm:${body.name}`)) {
        throw new AppError('NAME_TAKEN', `A VM named ${body.name} already exists`);
      }
      checkResources(ctx, { cpus: as?.cpus ?? vm.cpus, memory: as?.memory ?? vm.memory });
      if (lowestFreePort(ctx.repo.usedPorts()) === null) throw new AppError('NO_FREE_PORT', 'No free VNC port is left for a new VM');
      const plan: Planned[] = [];
      for (const [i, d] of vm.disks.entries()) plan.push(await this.plan(d.path, d.format ?? 'raw', `${body.name}-disk${i}`, body.mode, plan));
      names.push(`vm:${body.name}`, ...plan.map((p) => `disk:${p.name}`));
      for (const n of names) this.reserved.add(n);
      const task = this.tasks.start(as?.kind ?? 'vm.clone', { vm: id }, async (tctx) => {
        try {
          return await this.run(plan, tctx, (created) => {
            const newId = crypto.randomUUID();
            let mac = randomMac(crypto.randomBytes);
            while (ctx.repo.macTaken(mac)) mac = randomMac(crypto.randomBytes);
            const port = lowestFreePort(ctx.repo.usedPorts());
            if (port === null) throw new AppError('NO_FREE_PORT', 'No free VNC port is left for a new VM');
            if (ctx.repo.nameTaken(body.name)) throw new AppError('NAME_TAKEN', `A VM named ${body.name} already exists`);
            const at = nowIso();
            ctx.repo.insert({
              id: newId,
              name: body.name,
              cpus: as?.cpus ?? vm.cpus,
              memory: as?.memory ?? vm.memory,
              vnc_port: port,
              mac,
              created_at: at,
              // the same hardware (a fresh UEFI variable store and TPM state are made at its first start)
              ...hardwareColumns(as?.hardware ?? hardwareOf(vm)),
              // networks (issue 11): the same networks and models, a new MAC for every NIC
              nics: vm.nics.map((n, i) => ({ network: n.network, model: i === 0 && as?.hardware ? as.hardware.nicModel : n.model })),
            });
            if (vm.iso) ctx.repo.update(newId, { iso: vm.iso });
            for (const c of created) ctx.repo.attachDisk(newId, c.file, c.format, at);
            this.cloudInit?.copy(id, newId);
            if (as?.cloudInit) this.cloudInit?.set(newId, as.cloudInit, { emit: false });
            return { vm: newId };
          });
        } finally {
          this.release(lock, names);
        }
      });
      return { task };
    } catch (err) {
      this.release(lock, names);
      throw err;
    }
  }

  async cloneDisk(diskId: string, body: CloneDiskBody): Promise<{ task: Task }> {
    const { ctx } = this;
    const disk = ctx.disks.get(diskId);
    if (!disk) throw new AppError('DISK_NOT_FOUND', `Disk not found: ${diskId}`);
    // The VM the disk is attached to must stay stopped while the disk is read.
    const owner = disk.attachedTo ? requireVm(ctx, disk.attachedTo) : null;
    const lock = owner ? ctx.locks.hold(owner.id, 'configure') : null;
    const names: string[] = [];
    try {
      if (owner) requireAllowed(owner, 'configure', (status) => `Disk ${disk.name} is attached to VM ${owner.name}, which is ${status}; stop it first`);
      const planned = await this.plan(disk.path, disk.format, body.name, body.mode, []);
      names.push(`disk:${planned.name}`);
      this.reserved.add(names[0]!);
      const task = this.tasks.start('disk.clone', { disk: diskId }, async (tctx) => {
        try {
          return await this.run([planned], tctx, () => ({}));
        } finally {
          this.release(lock, names);
        }
      });
      return { task };
    } catch (err) {
      this.release(lock, names);
      throw err;
    }
  }

  // --- helpers -----------------------------------------------------------------------------

  /** Checks one source image and chooses the new disk's file; every refusal is a 4xx now. */
  private async plan(sourcePath: string, recordedFormat: string, name: string, mode: CloneMode, others: Planned[]): Promise<Planned> {
    const { ctx } = this;
    if (!fs.existsSync(sourcePath)) throw new AppError('FILE_MISSING', `The disk file is missing: ${sourcePath}`);
    const real = ctx.storage.resolveFile(sourcePath, 'disk');
    refuseIsoLibrary(ctx, real, 'disk');
    const managed = ctx.disks.byPath(real);
    if (managed && managed.status !== 'ready') throw new AppError('DISK_NOT_READY', `Disk ${managed.name} is ${managed.status}, not ready`);
    const sourceFormat = (managed?.format ?? recordedFormat) as DiskFormat;
    // The same checks as a start: every layer under the roots, no backing file that is anybody's disk.
    // A full clone of a chain (a linked clone) is flattened by the copy, which checks every layer again.
    await imageLayers(ctx.storage, real, sourceFormat, { checkBacking: backingRule(ctx, real) });
    if (mode === 'linked' && !managed) {
      throw new AppError('IMAGE_NOT_ALLOWED', `${real} is not a managed disk: a linked clone backs onto managed disks only (make a full clone)`);
    }
    if (ctx.disks.nameTaken(name) || this.reserved.has(`disk:${name}`) || others.some((o) => o.name === name)) {
      throw new AppError('NAME_TAKEN', `A disk named ${name} already exists`);
    }
    const format: DiskFormat = mode === 'linked' ? 'qcow2' : sourceFormat;
    const file = path.join(this.dir, `${name}.${EXTENSIONS[format]}`);
    if (fs.existsSync(file) || fs.existsSync(file + PARTIAL)) {
      throw new AppError('NAME_TAKEN', `A file named ${path.basename(file)} already exists in the disk directory`);
    }
    const bytes = managed ? managed.size * GiB : (await this.images.info(real, sourceFormat))['virtual-size'];
    return {
      source: real,
      sourceFormat,
      base: mode === 'linked' && managed ? { id: managed.id, path: managed.path } : null,
      name,
      file,
      format,
      sizeGb: managed?.size ?? Math.max(1, Math.ceil(bytes / GiB)),
      bytes: mode === 'linked' ? 0 : bytes,
    };
  }

  /**
   * Writes every new image under `<file>.part`, then moves them to their names (never over an
   * existing file) and registers the disks (and, through `commit`, the VM) in one transaction.
   * Until that commit every file is the task's partial file, removed if anything goes wrong.
   */
  private async run(
    plan: Planned[],
    tctx: TaskContext,
    commit: (created: Array<{ id: string; file: string; format: DiskFormat }>) => Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const { ctx } = this;
    const total = plan.reduce((n, p) => n + p.bytes, 0);
    if (total > 0) tctx.progress(0, total);
    let done = 0;
    for (const p of plan) {
      const part = p.file + PARTIAL;
      tctx.partial(part);
      if (p.base) {
        await this.images.overlay(part, { file: p.source, format: p.sourceFormat }, tctx.signal);
      } else {
        const before = done;
        await this.images.copy({ file: p.source, format: p.sourceFormat }, part, {
          signal: tctx.signal,
          progress: (d) => tctx.progress(before + Math.min(d, p.bytes), total),
          checkBacking: backingRule(ctx, p.source),
        });
      }
      if (tctx.signal.aborted) throw new Error('cancelled');
      fs.chmodSync(part, 0o600);
      done += p.bytes;
    }
    for (const p of plan) {
      const part = p.file + PARTIAL;
      if (ctx.disks.nameTaken(p.name)) throw new AppError('NAME_TAKEN', `A disk named ${p.name} was created meanwhile`);
      tctx.partial(p.file);
      fs.linkSync(part, p.file); // EEXIST rather than replace a file that appeared meanwhile
      fs.rmSync(part);
      tctx.kept(part);
    }
    const created = plan.map((p) => ({ id: crypto.randomUUID(), file: p.file, format: p.format }));
    const at = nowIso();
    const extra = ctx.disks.transaction(() => {
      plan.forEach((p, i) => {
        ctx.disks.insertReady({
          id: created[i]!.id,
          name: p.name,
          size: p.sizeGb,
          format: p.format,
          path: p.file,
          created_at: at,
          ...(p.base ? { backing: p.base } : {}),
        });
      });
      return commit(created);
    });
    for (const p of plan) tctx.kept(p.file);
    for (const c of created) {
      const disk = ctx.disks.get(c.id);
      if (disk) ctx.bus.publish({ type: 'disk.created', disk });
    }
    for (const p of plan) {
      const base = p.base ? ctx.disks.get(p.base.id) : null;
      if (base) ctx.bus.publish({ type: 'disk.updated', disk: base });
    }
    if (typeof extra.vm === 'string') {
      ctx.bus.publish({ type: 'vm.created', vm: publicVm(requireVm(ctx, extra.vm)) });
    }
    return plan.length === 1 && extra.vm === undefined ? { disk: created[0]!.id } : { ...extra, disks: created.map((c) => c.id) };
  }

  private release(lock: OpLock | null, names: string[]): void {
    lock?.release();
    for (const n of names) this.reserved.delete(n);
  }
}
