import type { HostShutdownBody, HostShutdownOutcome, Task } from '@qemu-manager/contract';
import { AppError, errorMessage } from '../lib/errors.js';
import { TaskFailure, type TaskService } from '../tasks/service.js';
import type { VmContext } from '../vms/context.js';
import type { PowerService } from '../vms/power.js';
import type { VmRecord } from '../vms/repo.js';

export const DEFAULT_HOST_SHUTDOWN_TIMEOUT_S = 120;

interface Outcome {
  vm: string;
  name: string;
  outcome: HostShutdownOutcome;
  error?: string;
}

/**
 * The running VMs in shutdown groups: VMs without autostart first (they came up last), then the
 * autostart ones by `order` descending (the reverse of the start order). A group goes down together.
 */
export function shutdownGroups(running: readonly VmRecord[]): VmRecord[][] {
  const key = (v: VmRecord) => (v.autostart.enabled ? v.autostart.order : Number.POSITIVE_INFINITY);
  const groups = new Map<number, VmRecord[]>();
  for (const v of running) groups.set(key(v), [...(groups.get(key(v)) ?? []), v]);
  return [...groups.entries()].sort(([a], [b]) => b - a).map(([, vms]) => vms.sort((x, y) => x.name.localeCompare(y.name)));
}

/**
 * Host shutdown (issue 15), as libvirt-guests does it: every running VM gets the ACPI power button
 * (through PowerService, group by group in reverse autostart order) until the one deadline
 * (`timeout`) passes; the VMs still running then are powered off. One run at a time.
 */
export class HostShutdown {
  private active: string | null = null;

  constructor(private readonly deps: { ctx: VmContext; power: PowerService; tasks: TaskService }) {}

  start(body: HostShutdownBody): Task {
    const { tasks } = this.deps;
    if (this.active) throw new AppError('VM_BUSY', `A shutdown of every VM is already running (task ${this.active})`);
    const timeoutS = body.timeout ?? DEFAULT_HOST_SHUTDOWN_TIMEOUT_S;
    const task = tasks.startCoordinator('host.shutdown-vms', {}, async (tc) => {
      try {
        return await this.run(timeoutS, (done, total) => tc.progress(done, total));
      } finally {
        this.active = null;
      }
    });
    this.active = task.id;
    return task;
  }

  private async run(timeoutS: number, progress: (done: number, total: number) => void): Promise<Record<string, unknown>> {
    const { ctx, power } = this.deps;
    const deadline = Date.now() + timeoutS * 1000;
    const all = ctx.repo.list();
    const outcomes = new Map<string, Outcome>();
    const running = all.filter((v) => ctx.runtime.process(v.id));
    for (const v of all) if (!running.includes(v)) outcomes.set(v.id, { vm: v.id, name: v.name, outcome: 'was-stopped' });
    const failures = new Map<string, string>();
    let done = 0;
    progress(done, running.length);
    for (const group of shutdownGroups(running)) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) break;
      await Promise.all(
        group.map(async (v) => {
          try {
            await power.shutdown(v.id, { timeout: left });
            outcomes.set(v.id, { vm: v.id, name: v.name, outcome: 'shutdown' });
            progress(++done, running.length);
          } catch (err) {
            failures.set(v.id, errorMessage(err)); // timed out, or refused (busy, paused): powered off below
          }
        }),
      );
    }
    // The deadline passed (or the button could not be pressed): power off what still runs.
    for (const v of running) {
      if (outcomes.has(v.id)) continue;
      if (!ctx.runtime.process(v.id)) {
        outcomes.set(v.id, { vm: v.id, name: v.name, outcome: 'shutdown' });
      } else {
        try {
          await power.stop(v.id);
          outcomes.set(v.id, { vm: v.id, name: v.name, outcome: 'powered-off', ...(failures.has(v.id) ? { error: failures.get(v.id) } : {}) });
        } catch (err) {
          outcomes.set(v.id, { vm: v.id, name: v.name, outcome: 'failed', error: errorMessage(err) });
        }
      }
      progress(++done, running.length);
    }
    // In the order they were taken down, then the VMs that were not running (by name).
    const order = [...shutdownGroups(running).flat(), ...all.filter((v) => !running.includes(v)).sort((a, b) => a.name.localeCompare(b.name))];
    const vms = order.map((v) => outcomes.get(v.id)!);
    const result = { timeoutS, vms };
    const failed = vms.filter((o) => o.outcome === 'failed');
    if (failed.length) throw new TaskFailure(`${failed.length} VM(s) could not be stopped: ${failed.map((o) => o.name).join(', ')}`, result);
    return result;
  }
}
