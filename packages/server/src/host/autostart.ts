import type { Task, Vm, VmAutostart } from '@qemu-manager/contract';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../lib/log.js';
import type { TaskService } from '../tasks/service.js';
import { emitVm, requireVm, type VmContext } from '../vms/context.js';
import type { PowerService } from '../vms/power.js';
import type { VmRecord } from '../vms/repo.js';
import { checkHostBoot } from './boot.js';

/** The autostart VMs in start order: `order` ascending, then name. */
export function startOrder(vms: readonly VmRecord[]): VmRecord[] {
  return vms.filter((v) => v.autostart.enabled).sort((a, b) => a.autostart.order - b.autostart.order || a.name.localeCompare(b.name));
}

/**
 * Autostart (issue 15): the setting per VM, and the run after a host boot — each autostart VM
 * started as a `vm.autostart` task, one after the other in `order`, waiting the VM's `delayS`
 * after its start before the next one.
 */
export class Autostart {
  private readonly abort = new AbortController();
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { ctx: VmContext; power: PowerService; tasks: TaskService; log: Logger; bootIdFile: string; recordFile: string },
  ) {}

  /** Replaces a VM's autostart setting (any status: it matters at the next host boot). */
  set(id: string, setting: VmAutostart): Vm {
    const { ctx } = this.deps;
    requireVm(ctx, id);
    ctx.repo.update(id, { autostart_enabled: setting.enabled ? 1 : 0, autostart_order: setting.order, autostart_delay_s: setting.delayS });
    return emitVm(ctx, id);
  }

  /**
   * At server start, after the VMs were adopted: when the host booted since the last start, starts
   * the autostart VMs in the background. Returns whether it did.
   */
  begin(): boolean {
    const { hostBoot, bootId } = checkHostBoot(this.deps.bootIdFile, this.deps.recordFile);
    if (bootId === null) this.deps.log.warn({ file: this.deps.bootIdFile }, 'the host boot id cannot be read: autostart is off');
    if (!hostBoot) return false;
    const order = startOrder(this.deps.ctx.repo.list());
    if (order.length) this.deps.log.info({ vms: order.map((v) => v.name) }, 'host boot: starting the autostart VMs');
    this.running = this.run(order.map((v) => v.id)).catch((err: unknown) => this.deps.log.error({ err }, 'autostart stopped'));
    return true;
  }

  /** Stops starting more VMs (the app is closing); a start under way ends as its task. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(ids: string[]): Promise<void> {
    const { ctx, tasks, power } = this.deps;
    const signal = this.abort.signal;
    for (const [i, id] of ids.entries()) {
      if (signal.aborted) return;
      const vm = ctx.repo.get(id);
      if (!vm?.autostart.enabled) continue; // deleted or turned off meanwhile
      const { order, delayS } = vm.autostart;
      const task: Task = tasks.start('vm.autostart', { vm: id }, async () => {
        // Adopted at this start (it kept running): nothing to do.
        if (ctx.runtime.process(id)) return { vm: id, name: vm.name, order, delayS, started: false, reason: 'already running' };
        const { vm: started } = await power.start(id);
        return { vm: id, name: vm.name, order, delayS, started: true, pid: started.pid };
      });
      const ended = await tasks.wait(task.id);
      if (ended.status !== 'succeeded') this.deps.log.warn({ vmId: id, error: ended.error }, 'autostart of a VM failed');
      const startedNow = ended.status === 'succeeded' && ended.result?.started === true;
      if (i < ids.length - 1 && delayS > 0 && startedNow) {
        try {
          await sleep(delayS * 1000, undefined, { signal });
        } catch {
          return; // closing
        }
      }
    }
  }
}
