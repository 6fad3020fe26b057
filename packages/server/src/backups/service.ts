import type { Backup, CreateBackupBody, Task } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { AppError, errorMessage } from '../lib/errors.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskService } from '../tasks/service.js';
import { publicVm, requireAllowed, requireVm, type VmContext } from '../vms/context.js';
import { runBackup, type EngineDeps } from './engine.js';
import { publicBackup, type BackupRepo } from './repo.js';
import type { BackupTargets } from './targets.js';

/**
 * Backups (issue 13, engine): starting a backup of a VM (a task), listing and reading backups,
 * and the reconciliation at server start. The copy itself is backups/engine.ts.
 */
export class BackupService {
  private readonly deps: EngineDeps;

  constructor(
    private readonly ctx: VmContext,
    private readonly tasks: TaskService,
    images: ImageTool,
    private readonly repo: BackupRepo,
    private readonly targets: BackupTargets,
    qemuVersion: string | null,
  ) {
    this.deps = { ctx, images, repo, qemuVersion: qemuVersion ?? 'unknown' };
  }

  list(filter: { vm?: string; target?: string }): Backup[] {
    return this.repo.list(filter).map(publicBackup);
  }

  get(id: string): Backup {
    const b = this.repo.get(id);
    if (!b) throw new AppError('BACKUP_NOT_FOUND', `Backup not found: ${id}`);
    return publicBackup(b);
  }

  /**
   * Starts a backup of the VM (task `backup.create`, result `{ backup, kind, notes }`). The VM's
   * lock is held until the task ends (no start, stop or reconfiguration meanwhile; the VM keeps
   * running). A failed or cancelled backup emits `backup.failed` (with `opts.schedule`).
   */
  start(vmId: string, body: CreateBackupBody, opts: { schedule?: string } = {}): Task {
    const { ctx } = this;
    const vm = requireVm(ctx, vmId);
    const target = this.targets.resolve(body.target);
    requireAllowed(vm, 'backup', (status) => `Cannot back up VM ${vm.name} while it is ${status}; try again in a moment`);
    if (vm.disks.length === 0) throw new AppError('VALIDATION', `VM ${vm.name} has no disks to back up`);
    const lock = ctx.locks.hold(vmId, 'backup');
    try {
      for (const d of vm.disks) {
        if (!fs.existsSync(d.path)) throw new AppError('FILE_MISSING', `The disk file is missing: ${d.path}`);
      }
      const task = this.tasks.start('backup.create', { vm: vmId }, async (tctx) => {
        try {
          return await runBackup(this.deps, { vmId, target, mode: body.mode ?? null, ...(body.speedLimit ? { speedLimit: body.speedLimit } : {}) }, tctx);
        } catch (err) {
          this.failed(vmId, vm.name, task.id, err, opts.schedule ?? null);
          throw err;
        } finally {
          lock.release();
        }
      });
      return task;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /**
   * At server start (after the VMs are reconciled and tasks marked interrupted): removes every
   * `.partial-*` directory under every target, cancels backup jobs left in adopted QEMUs (the VMs
   * keep running), marks listed backups whose directory is gone `missing`, and emits
   * `backup.failed` for each backup task the restart interrupted.
   */
  async recover(interrupted: ReadonlyArray<{ id: string; kind: string; vm: string | null; error: string | null }>): Promise<{ partials: number; jobs: number; missing: number }> {
    const { ctx } = this;
    let partials = 0;
    for (const t of this.targets.all()) {
      let vmDirs: string[] = [];
      try {
        vmDirs = fs.readdirSync(t.path);
      } catch {
        continue;
      }
      for (const v of vmDirs) {
        const dir = path.join(t.path, v);
        let entries: string[] = [];
        try {
          if (!fs.lstatSync(dir).isDirectory()) continue;
          entries = fs.readdirSync(dir);
        } catch {
          continue;
        }
        for (const e of entries) {
          if (!e.startsWith('.partial-')) continue;
          fs.rmSync(path.join(dir, e), { recursive: true, force: true });
          partials++;
        }
      }
    }
    let jobs = 0;
    for (const vm of ctx.repo.list()) {
      if (!ctx.runtime.process(vm.id)) continue;
      try {
        jobs += await ctx.runtime.recoverBackups(vm.id);
      } catch (err) {
        ctx.log.warn({ vmId: vm.id, err: errorMessage(err) }, 'could not clear backup jobs of a VM');
      }
    }
    let missing = 0;
    for (const b of this.repo.list()) {
      if (b.state !== 'missing' && !fs.existsSync(path.join(b.dir, 'manifest.json'))) {
        this.repo.update({ ...b, state: 'missing' });
        missing++;
      }
    }
    for (const t of interrupted) {
      if (t.kind !== 'backup.create' || !t.vm) continue;
      const vm = ctx.repo.get(t.vm);
      ctx.bus.publish({ type: 'backup.failed', vm: t.vm, vmName: vm?.name ?? '', task: t.id, error: t.error ?? 'Interrupted by a server restart', schedule: null });
    }
    return { partials, jobs, missing };
  }

  private failed(vmId: string, vmName: string, task: string, err: unknown, schedule: string | null): void {
    const vm = this.ctx.repo.get(vmId);
    this.ctx.bus.publish({ type: 'backup.failed', vm: vmId, vmName: vm ? publicVm(vm).name : vmName, task, error: errorMessage(err), schedule });
  }
}
