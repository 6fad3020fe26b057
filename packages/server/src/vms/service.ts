import { vmActionAllowed, type CloudInitBody, type CreateVmBody, type DiskFormat, type Task, type UpdateResourcesBody, type Vm, type VmStatus } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { detectFormat, imageLayers, type ImageFormat } from '../lib/image-check.js';
import { AppError } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import { randomMac } from '../lib/mac.js';
import { lowestFreePort } from '../lib/ports.js';
import {
  checkResources,
  emitDiskByPath,
  emitVm,
  publicVm,
  requireAllowed,
  requireVm,
  type VmContext,
} from './context.js';
import { backingRule, refuseIsoLibrary } from './image-rules.js';
import { refuseBase } from '../disks/chain.js';
import type { PowerService } from './power.js';
import { DEFAULT_HARDWARE, hardwareChange, hardwareColumns, mergeHardware, refuseLayout, resolveCdMedium } from './hardware.js'; // hardware options (issue 12)
import { pickDriversIso, presetBase } from './presets.js'; // OS presets (issue 12)
import { refuseTemplate } from './template.js'; // templates (issue 12)
import type { CreateFromImage, NewVmColumns } from './create-from-image.js'; // images (issue 12)
import { checkCloudInitBody, type CloudInitService } from './cloud-init.js'; // cloud-init (issue 12)

/** VM definitions: create, delete, resources, disks and ISO. Power actions live in power.ts. */
export class VmService {
  /** The serialized list and the repo versions it was built from. */
  private listCache: { key: string; body: Buffer } | null = null;

  constructor(
    private readonly ctx: VmContext,
    private readonly power: PowerService,
    /** The task working on a managed disk now (a resize, clone or conversion of it), if any. */
    private readonly diskTask: (diskId: string) => { kind: string; id: string } | null = () => null,
    /** images (issue 12): makes a VM from an image (vms/create-from-image.ts). */
    private readonly fromImage?: Pick<CreateFromImage, 'start'>,
    /** Cloud-init (issue 12): stores the config a plain create body carries (an image create: fromImage does). */
    private readonly cloudInit: Pick<CloudInitService, 'set'> | null = null,
  ) {}

  list(): Vm[] {
    return this.ctx.repo.list().map(publicVm);
  }

  /** `{"vms":[...]}` as JSON, cached between changes: listing costs no query while nothing changes. */
  listJson(): Buffer {
    const key = `${this.ctx.repo.version}:${this.ctx.disks.version}`;
    // A Buffer goes out as it is; a string would be measured and encoded again on every response.
    if (this.listCache?.key !== key) this.listCache = { key, body: Buffer.from(JSON.stringify({ vms: this.list() })) };
    return this.listCache.body;
  }

  get(id: string): Vm {
    return publicVm(requireVm(this.ctx, id));
  }

  create(body: CreateVmBody): Vm | { task: Task } {
    const { bus } = this.ctx;
    // templates (issue 12): POST /api/vms with "template" is TemplateService.create (a task)
    if (body.template !== undefined) throw new AppError('VALIDATION', 'A VM from a template is made by a task: use POST /api/vms');
    const columns = this.newVmColumns(body);
    // images (issue 12): a VM with a disk made from an image, as one vm.create task
    if (body.image !== undefined) {
      if (!this.fromImage) throw new AppError('VALIDATION', 'Creating a VM from an image is not available on this server');
      return this.fromImage.start(body, (at) => this.insertVm(columns, at));
    }
    // cloud-init (issue 12): checked before the VM is made, stored right after it
    if (body.cloudInit !== undefined && !this.cloudInit) throw new AppError('VALIDATION', 'cloud-init is not available on this server');
    if (body.cloudInit !== undefined) checkCloudInitBody(body.cloudInit);
    const id = this.insertVm(columns, nowIso());
    if (body.cloudInit !== undefined) this.storeCloudInit(id, body.cloudInit);
    const vm = this.get(id);
    bus.publish({ type: 'vm.created', vm });
    return vm;
  }

  /** A new VM's columns (but id, VNC port and MAC) once its body passed every check. */
  private newVmColumns(body: CreateVmBody): NewVmColumns {
    const { repo } = this.ctx;
    const { cpus, memory } = body;
    if (cpus === undefined || memory === undefined) {
      throw new AppError('VALIDATION', `body is missing the field: ${cpus === undefined ? 'cpus' : 'memory'}`);
    }
    checkResources(this.ctx, body);
    // hardware options (issue 12): the osType preset fills what the body does not name
    const change = hardwareChange(this.ctx, body);
    const hardware = mergeHardware(presetBase(DEFAULT_HARDWARE, change, libraryDriversIso(this.ctx)), change);
    refuseLayout({ disks: [] }, hardware);
    if (repo.nameTaken(body.name)) throw new AppError('NAME_TAKEN', `A VM named ${body.name} already exists`);
    if (lowestFreePort(repo.usedPorts()) === null) throw new AppError('NO_FREE_PORT', 'No free VNC port is left for a new VM');
    // networks (issue 11): the first NIC's network is checked before anything is made
    if (body.network !== undefined) repo.planNic(body.network, new Set());
    return { name: body.name, cpus, memory, ...hardwareColumns(hardware), ...(body.network !== undefined ? { network: body.network } : {}) };
  }

  /** Inserts the VM with a free VNC port and a new MAC; returns its id. */
  private insertVm(columns: NewVmColumns, at: string): string {
    const { repo } = this.ctx;
    if (repo.nameTaken(columns.name)) throw new AppError('NAME_TAKEN', `A VM named ${columns.name} already exists`);
    const port = lowestFreePort(repo.usedPorts());
    if (port === null) throw new AppError('NO_FREE_PORT', 'No free VNC port is left for a new VM');
    let mac = randomMac(crypto.randomBytes);
    while (repo.macTaken(mac)) mac = randomMac(crypto.randomBytes);
    const id = crypto.randomUUID();
    repo.insert({ id, vnc_port: port, mac, created_at: at, ...columns });
    return id;
  }

  /** Cloud-init (issue 12): the config of a VM just made; if it cannot be stored, the VM goes too. */
  private storeCloudInit(id: string, body: CloudInitBody): void {
    try {
      this.cloudInit!.set(id, body, { emit: false }); // vm.created follows, with cloudInit: true
    } catch (err) {
      this.ctx.repo.delete(id);
      throw err;
    }
  }

  async delete(id: string, force: boolean): Promise<void> {
    const { ctx } = this;
    const vm = requireVm(ctx, id);
    if (!vmActionAllowed(vm.status, 'delete')) {
      if (!force) {
        requireAllowed(vm, 'delete', (status) => `VM is ${status}; stop it first, or delete with ?force=true to power it off`);
      }
      await this.power.stop(id);
    }
    await ctx.locks.with(id, 'delete', () => {
      const current = requireVm(ctx, id);
      requireAllowed(current, 'delete', stopFirst('delete the VM'));
      // templates (issue 12): a template goes only once no linked clone backs onto its disks
      if (current.template) for (const d of current.disks) {
        const managed = ctx.disks.byPath(d.path);
        if (managed) refuseBase(ctx.disks, managed, 'deleted with its template');
      }
      ctx.repo.delete(id);
      ctx.runtime.discard(id);
      ctx.bus.publish({ type: 'vm.deleted', id });
      for (const d of current.disks) emitDiskByPath(ctx, d.path);
    });
  }

  updateResources(id: string, body: UpdateResourcesBody): Vm {
    const { ctx } = this;
    const release = ctx.locks.acquire(id, 'configure');
    try {
      const vm = requireVm(ctx, id);
      checkResources(ctx, body, id);
      requireAllowed(vm, 'configure', stopFirst('change CPU or memory'));
      ctx.repo.update(id, {
        ...(body.cpus !== undefined ? { cpus: body.cpus } : {}),
        ...(body.memory !== undefined ? { memory: body.memory } : {}),
      });
      return emitVm(ctx, id);
    } finally {
      release();
    }
  }

  /**
   * Attaches an image. A managed disk always opens in the format it was created with; an external
   * image in the format the client names (only raw may go unnamed: nothing is ever probed). The
   * image and every file it refers to must be plain files under the storage roots (imageLayers),
   * and files of the ISO library are CD media, never disks.
   */
  async attachDisk(id: string, diskPath: string, format?: DiskFormat): Promise<Vm> {
    const { ctx } = this;
    return ctx.locks.with(id, 'configure', async () => {
      const target = requireVm(ctx, id);
      requireAllowed(target, 'attachDisk', stopFirst('attach a disk'));
      refuseTemplate(target, 'given another disk'); // templates (issue 12)
      const real = ctx.storage.resolveFile(diskPath, 'disk');
      refuseIsoLibrary(ctx, real, 'disk');
      const managed = ctx.disks.byPath(real);
      if (managed && managed.status !== 'ready') {
        throw new AppError('DISK_NOT_READY', `Disk ${managed.name} is ${managed.status}, not ready`);
      }
      // A disk being resized, cloned or converted is not given to a VM until that task ends.
      const busy = managed ? this.diskTask(managed.id) : null;
      if (managed && busy) {
        throw new AppError('DISK_IN_USE', `Disk ${managed.name} is busy with a ${busy.kind} task (${busy.id}); attach it when that task ends`);
      }
      const owner = ctx.repo.diskOwner(real);
      if (owner === id) throw new AppError('DISK_IN_USE', `Disk is already attached to this VM: ${real}`);
      if (owner) throw new AppError('DISK_IN_USE', `Disk is attached to another VM (${owner}): ${real}`);
      const mountedIn = ctx.repo.list().find((v) => v.iso === real || v.driversIso === real); // (issue 12: the drivers CD-ROM too)
      if (mountedIn) throw new AppError('ISO_IN_USE', `${real} is inserted as CD media in VM ${mountedIn.name}; eject it first`);
      let chosen: ImageFormat;
      if (managed) {
        if (format !== undefined && format !== managed.format) {
          throw new AppError('IMAGE_NOT_ALLOWED', `Disk ${managed.name} is a ${managed.format} disk; it cannot be attached as ${format}`);
        }
        chosen = managed.format;
      } else {
        chosen = format ?? (await externalFormat(ctx, real));
      }
      // No backing file may be another VM's disk, a managed disk or an ISO library file.
      await imageLayers(ctx.storage, real, chosen, { checkBacking: backingRule(ctx, real) });
      if (ctx.repo.diskOwner(real)) throw new AppError('DISK_IN_USE', `Disk was attached meanwhile: ${real}`);
      ctx.repo.attachDisk(id, real, chosen, nowIso());
      emitDiskByPath(ctx, real);
      return emitVm(ctx, id);
    });
  }

  detachDisk(id: string, diskPath: string): Vm {
    const { ctx } = this;
    const release = ctx.locks.acquire(id, 'configure');
    try {
      const vm = requireVm(ctx, id);
      requireAllowed(vm, 'detachDisk', stopFirst('detach a disk'));
      refuseTemplate(vm, 'left without a disk'); // templates (issue 12)
      const attached = vm.disks.find((d) => d.path === diskPath) ?? vm.disks.find((d) => d.path === realOrNull(diskPath));
      if (!attached) throw new AppError('DISK_NOT_ATTACHED', `Disk is not attached to this VM: ${diskPath}`);
      ctx.repo.detachDisk(id, attached.path);
      emitDiskByPath(ctx, attached.path);
      return emitVm(ctx, id);
    } finally {
      release();
    }
  }

  /** Inserts an ISO in the CD-ROM drive; live over QMP while QEMU runs. */
  async mountIso(id: string, isoPath: string): Promise<Vm> {
    const { ctx } = this;
    return ctx.locks.with(id, 'configure', async () => {
      const vm = requireVm(ctx, id);
      // A VM's disk is nobody's CD: not a managed disk, not an image attached to any VM, no library image.
      const real = resolveCdMedium(ctx, isoPath);
      if (this.live(vm, 'mountIso')) await ctx.runtime.changeMedium(id, real);
      ctx.repo.update(id, { iso: real });
      return emitVm(ctx, id);
    });
  }

  async unmountIso(id: string): Promise<Vm> {
    const { ctx } = this;
    return ctx.locks.with(id, 'configure', async () => {
      const vm = requireVm(ctx, id);
      if (this.live(vm, 'unmountIso')) await ctx.runtime.ejectMedium(id);
      ctx.repo.update(id, { iso: null });
      return emitVm(ctx, id);
    });
  }

  /** Whether the ISO change goes to a running QEMU (409 while the VM is between states). */
  private live(vm: Pick<Vm, 'id' | 'status'>, action: 'mountIso' | 'unmountIso'): boolean {
    requireAllowed(vm, action, (status) => `VM is ${status}; try again in a moment`);
    return vm.status !== 'stopped' && this.ctx.runtime.process(vm.id) !== null;
  }
}

/** OS presets (issue 12): the real path of the ISO library's virtio-win ISO, if it has one. */
function libraryDriversIso(ctx: VmContext): string | null {
  const dir = path.join(ctx.config.dataDir, 'isos');
  let names: string[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
  } catch {
    return null;
  }
  const name = pickDriversIso(names);
  if (!name) return null;
  try {
    return resolveCdMedium(ctx, path.join(dir, name));
  } catch {
    return null;
  }
}

/** An external image given without a format: raw is taken as raw; anything else must be named. */
async function externalFormat(ctx: VmContext, real: string): Promise<ImageFormat> {
  const opened = ctx.storage.openFile(real, 'disk', fs.constants.O_RDONLY);
  let seen: Awaited<ReturnType<typeof detectFormat>>;
  try {
    seen = await detectFormat(opened.fd);
  } finally {
    fs.closeSync(opened.fd);
  }
  if (seen === 'raw') return 'raw';
  if (seen === 'iso') {
    throw new AppError('IMAGE_NOT_ALLOWED', `${real} is an ISO 9660 image: insert it as CD media, or pass "format": "raw" to use it as a raw disk`);
  }
  throw new AppError('IMAGE_NOT_ALLOWED', `${real} looks like a ${seen} image: formats are never guessed, pass "format": "${seen}" to attach it as one`);
}

/** The words of a refusal until the VM is stopped. */
function stopFirst(what: string): (status: VmStatus) => string {
  return (status) => `Cannot ${what} while the VM is ${status}; stop it first`;
}

function realOrNull(p: string): string | null {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}
