import type { RestoreBackupBody, Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { refuseBase } from '../disks/chain.js';
import { AppError } from '../lib/errors.js';
import { hardwareColumns } from '../vms/hardware.js';
import { nextLayer } from '../lib/image-check.js';
import { randomMac } from '../lib/mac.js';
import { lowestFreePort } from '../lib/ports.js';
import { nowIso } from '../lib/time.js';
import type { TaskContext } from '../tasks/service.js';
import { checkResources, publicVm, requireAllowed, requireVm } from '../vms/context.js';
import type { OpLock } from '../vms/locks.js';
import { backupChainRule, requireBackup, rootOf, type BackupOpsDeps } from './ops-common.js';
import type { BackupRecord } from './repo.js';

const GiB = 1024 ** 3;
const PARTIAL = '.part';
const RESTORING = '.restore';

/**
 * POST /api/backups/{id}/restore (issue 13). Each disk's content is the backup's view of it: the
 * backup file with its whole chain, flattened by the image tool into a new self-contained qcow2.
 * - `as: "new"`: a new VM (new id, MAC, VNC port; cpus and memory from the manifest) with new
 *   managed disks `<name>-disk<N>`, written under `.part` names and registered with the VM in one
 *   transaction at the end, as a VM clone does: a failed or cancelled restore leaves nothing.
 * - `as: "replace"`: the VM (same id) must exist and be stopped, and keep its lock for the whole task;
 *   each copy is written next to the disk it replaces (`<disk>.restore`), checked (headers,
 *   `qemu-img check`), and only when every copy is complete are they renamed over the old disks;
 *   then the VM's dirty-bitmap rows are dropped (its next backup is full).
 */
export class BackupRestore {
  constructor(private readonly deps: BackupOpsDeps) {}

  start(id: string, body: RestoreBackupBody): { task: Task } {
    const b = requireBackup(this.deps.repo, id);
    if (b.state === 'corrupt') throw new AppError('IMAGE_NOT_ALLOWED', `Backup ${id} is corrupt (a verify found a bad file); it cannot be restored`);
    return body.as === 'new' ? this.asNew(b, body.name) : this.replace(b);
  }

  private asNew(b: BackupRecord, name: string): { task: Task } {
    const { deps } = this;
    const ctx = deps.vm;
    const m = b.manifest;
    const disks = [...m.disks].sort((x, y) => x.index - y.index);
    const planned = disks.map((d) => ({ d, name: `${name}-disk${d.index}`, file: path.join(deps.disksDir, `${name}-disk${d.index}.qcow2`) }));
    if (ctx.repo.nameTaken(name) || deps.reserved.has(`vm:${name}`)) throw new AppError('NAME_TAKEN', `A VM named ${name} already exists`);
    for (const p of planned) {
      if (ctx.disks.nameTaken(p.name) || deps.reserved.has(`disk:${p.name}`) || fs.existsSync(p.file) || fs.existsSync(p.file + PARTIAL)) {
        throw new AppError('NAME_TAKEN', `A disk named ${p.name} already exists`);
      }
    }
    checkResources(ctx, { cpus: m.vm.cpus, memory: m.vm.memory });
    if (lowestFreePort(ctx.repo.usedPorts()) === null) throw new AppError('NO_FREE_PORT', 'No free VNC port is left for a new VM');
    const names = [`vm:${name}`, ...planned.map((p) => `disk:${p.name}`)];
    for (const n of names) deps.reserved.add(n);
    const onHost = ctx.repo.get(b.vm) !== null;
    try {
      const task = deps.tasks.start('backup.restore', onHost ? { vm: b.vm } : {}, async (tctx) => {
        try {
          await this.copyAll(b, planned.map((p) => ({ d: p.d, target: p.file + PARTIAL })), tctx);
          for (const p of planned) {
            if (ctx.disks.nameTaken(p.name)) throw new AppError('NAME_TAKEN', `A disk named ${p.name} was created meanwhile`);
            tctx.partial(p.file);
            fs.linkSync(p.file + PARTIAL, p.file); // EEXIST rather than replace a file that appeared meanwhile
            fs.rmSync(p.file + PARTIAL);
            tctx.kept(p.file + PARTIAL);
          }
          const newId = crypto.randomUUID();
          const diskIds = planned.map(() => crypto.randomUUID());
          const at = nowIso();
          ctx.disks.transaction(() => {
            let mac = randomMac(crypto.randomBytes);
            while (ctx.repo.macTaken(mac)) mac = randomMac(crypto.randomBytes);
            const port = lowestFreePort(ctx.repo.usedPorts());
            if (port === null) throw new AppError('NO_FREE_PORT', 'No free VNC port is left for a new VM');
            if (ctx.repo.nameTaken(name)) throw new AppError('NAME_TAKEN', `A VM named ${name} already exists`);
            planned.forEach((p, i) => {
              ctx.disks.insertReady({ id: diskIds[i]!, name: p.name, size: Math.max(1, Math.ceil(p.d.virtualSize / GiB)), format: 'qcow2', path: p.file, created_at: at });
            });
            ctx.repo.insert({
              id: newId,
              name,
              cpus: m.vm.cpus,
              memory: m.vm.memory,
              vnc_port: port,
              mac,
              created_at: at,
              // the backed-up VM's hardware (a manifest from before these fields: BIOS, no TPM)
              ...hardwareColumns({ firmware: m.vm.firmware ?? 'bios', secureBoot: m.vm.secureBoot ?? false, tpm: m.vm.tpm ?? false }),
            });
            for (const p of planned) ctx.repo.attachDisk(newId, p.file, 'qcow2', at);
          });
          for (const p of planned) tctx.kept(p.file);
          tctx.target({ vm: newId });
          for (const dId of diskIds) {
            const disk = ctx.disks.get(dId);
            if (disk) ctx.bus.publish({ type: 'disk.created', disk });
          }
          ctx.bus.publish({ type: 'vm.created', vm: publicVm(requireVm(ctx, newId)) });
          return { vm: newId, disks: diskIds };
        } finally {
          for (const n of names) deps.reserved.delete(n);
        }
      });
      return { task };
    } catch (err) {
      for (const n of names) deps.reserved.delete(n);
      throw err;
    }
  }

  private replace(b: BackupRecord): { task: Task } {
    const { deps } = this;
    const ctx = deps.vm;
    const vm = ctx.repo.get(b.vm);
    if (!vm) throw new AppError('VM_NOT_FOUND', `The VM ${b.vmName} (${b.vm}) of this backup is not on this host; restore it as a new VM`);
    const lock: OpLock = ctx.locks.hold(vm.id, 'configure');
    try {
      requireAllowed(vm, 'configure', (status) => `Cannot replace the disks of VM ${vm.name} while it is ${status}; stop it first`);
      const disks = [...b.manifest.disks].sort((x, y) => x.index - y.index);
      if (disks.length !== vm.disks.length || disks.some((d, i) => d.index !== i)) {
        throw new AppError('IMAGE_NOT_ALLOWED', `VM ${vm.name} has ${vm.disks.length} disk(s), the backup ${disks.length}; attach or detach disks to match, or restore as a new VM`);
      }
      const planned = disks.map((d, i) => {
        const current = vm.disks[i]!;
        if ((current.format ?? 'raw') !== 'qcow2') {
          throw new AppError('IMAGE_NOT_ALLOWED', `Disk ${i} of VM ${vm.name} (${current.path}) is ${current.format ?? 'raw'}; a restore writes qcow2 (restore as a new VM)`);
        }
        if (!fs.existsSync(current.path)) throw new AppError('FILE_MISSING', `The disk file is missing: ${current.path}`);
        const real = ctx.storage.resolveFile(current.path, 'disk');
        // A linked clone's base: overlays read it, so its content must not change under them.
        const managed = ctx.disks.byPath(real);
        if (managed) refuseBase(ctx.disks, managed, 'replaced by a restore');
        if (fs.existsSync(real + RESTORING)) throw new AppError('VM_BUSY', `${real + RESTORING} exists: another restore runs (or remove it)`);
        return { d, disk: real, target: real + RESTORING };
      });
      const task = deps.tasks.start('backup.restore', { vm: vm.id }, async (tctx) => {
        try {
          await this.copyAll(b, planned, tctx);
          for (const p of planned) {
            const check = await deps.images.check(p.target, 'qcow2', { root: path.dirname(p.target) });
            if (!check.ok) throw new Error(`The restored copy of disk ${p.d.index} did not pass qemu-img check: ${check.message}`);
          }
          // Every copy is complete and checked: now (and only now) the old disks are replaced.
          for (const p of planned) {
            fs.renameSync(p.target, p.disk);
            tctx.kept(p.target);
          }
          deps.repo.dropBitmaps(vm.id);
          for (const p of planned) {
            const disk = ctx.disks.byPath(p.disk);
            if (disk) ctx.bus.publish({ type: 'disk.updated', disk });
          }
          ctx.bus.publish({ type: 'vm.updated', vm: publicVm(requireVm(ctx, vm.id)) });
          return { vm: vm.id };
        } finally {
          lock.release();
        }
      });
      return { task };
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /** Flattens each disk's chain into its target (a partial file of the task until kept). */
  private async copyAll(b: BackupRecord, plan: Array<{ d: BackupRecord['disks'][number]; target: string }>, tctx: TaskContext): Promise<void> {
    const total = plan.reduce((n, p) => n + p.d.virtualSize, 0);
    let done = 0;
    tctx.progress(0, total);
    const root = rootOf(b);
    for (const p of plan) {
      tctx.partial(p.target);
      const before = done;
      await this.deps.images.flatten({ file: path.join(b.dir, p.d.file), root, checkBacking: backupChainRule(b) }, p.target, {
        signal: tctx.signal,
        progress: (d) => tctx.progress(before + Math.min(d, p.d.virtualSize), total),
        partial: (f) => tctx.partial(f),
      });
      if (tctx.signal.aborted) throw new Error('cancelled');
      const fd = fs.openSync(p.target, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        if ((await nextLayer(fd, p.target, 'qcow2')) !== null) throw new Error(`The restored copy of disk ${p.d.index} names a backing file`);
        fs.fchmodSync(fd, 0o600);
      } finally {
        fs.closeSync(fd);
      }
      done += p.d.virtualSize;
    }
  }
}
