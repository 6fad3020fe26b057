// "New machine" is several API calls. This runs them in order, reports each step, and keeps
// going where it makes sense (an ISO can still be inserted when the disk failed).
import type { CreateDiskBody, CreateVmBody, Disk, ServerEvent, Vm } from '@qemu-manager/contract';
import { errorMessage } from '../../api/client';
import { t } from '../../i18n';

export type StepId = 'createVm' | 'createDisk' | 'waitDisk' | 'attachDisk' | 'mountIso';
export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped';
export interface Step {
  id: StepId;
  status: StepStatus;
  error?: string;
}

export interface CreateVmPlan {
  vm: CreateVmBody;
  disk?: CreateDiskBody;
  isoPath?: string;
}

export interface FlowDeps {
  createVm(body: CreateVmBody): Promise<Vm>;
  createDisk(body: CreateDiskBody): Promise<Disk>;
  waitForDisk(disk: Disk): Promise<Disk>;
  attachDisk(vmId: string, diskPath: string): Promise<Vm>;
  mountIso(vmId: string, isoPath: string): Promise<Vm>;
}

export interface FlowResult {
  vm: Vm | null;
  steps: Step[];
  ok: boolean;
}

export function planSteps(plan: CreateVmPlan): Step[] {
  const ids: StepId[] = ['createVm'];
  if (plan.disk) ids.push('createDisk', 'waitDisk', 'attachDisk');
  if (plan.isoPath) ids.push('mountIso');
  return ids.map((id) => ({ id, status: 'pending' }));
}

export async function runCreateVm(plan: CreateVmPlan, deps: FlowDeps, onChange: (steps: Step[]) => void): Promise<FlowResult> {
  let steps = planSteps(plan);
  const set = (id: StepId, status: StepStatus, error?: string) => {
    steps = steps.map((s) => (s.id === id ? { id, status, ...(error ? { error } : {}) } : s));
    onChange(steps);
  };
  const skipRest = (ids: StepId[]) => ids.forEach((id) => steps.some((s) => s.id === id) && set(id, 'skipped'));
  async function step<T>(id: StepId, fn: () => Promise<T>): Promise<T | null> {
    set(id, 'running');
    try {
      const value = await fn();
      set(id, 'done');
      return value;
    } catch (err) {
      set(id, 'failed', errorMessage(err));
      return null;
    }
  }

  let vm = await step('createVm', () => deps.createVm(plan.vm));
  if (!vm) {
    skipRest(['createDisk', 'waitDisk', 'attachDisk', 'mountIso']);
    return { vm: null, steps, ok: false };
  }
  const vmId = vm.id;

  if (plan.disk) {
    const body = plan.disk;
    const created = await step('createDisk', () => deps.createDisk(body));
    const ready = created && (await step('waitDisk', () => deps.waitForDisk(created)));
    if (!created) skipRest(['waitDisk', 'attachDisk']);
    else if (!ready) skipRest(['attachDisk']);
    else vm = (await step('attachDisk', () => deps.attachDisk(vmId, ready.path))) ?? vm;
  }

  if (plan.isoPath) {
    const isoPath = plan.isoPath;
    vm = (await step('mountIso', () => deps.mountIso(vmId, isoPath))) ?? vm;
  }

  return { vm, steps, ok: steps.every((s) => s.status === 'done') };
}

export interface WaitDeps {
  get(id: string): Promise<Disk>;
  /** Subscribe to server events; returns an unsubscribe function. */
  subscribe(listener: (ev: ServerEvent) => void): () => void;
  pollMs?: number;
  timeoutMs?: number;
}

/** Resolve when the disk is ready (seen via an event or a poll), reject with its error otherwise. */
export function waitForDiskReady(disk: Disk, deps: WaitDeps): Promise<Disk> {
  if (disk.status === 'ready') return Promise.resolve(disk);
  if (disk.status === 'error') return Promise.reject(new Error(disk.error ?? t.errors.unexpected));
  return new Promise<Disk>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      unsubscribe();
      clearInterval(poll);
      clearTimeout(timer);
      fn();
    };
    const check = (d: Disk) => {
      if (d.id !== disk.id) return;
      if (d.status === 'ready') finish(() => resolve(d));
      else if (d.status === 'error') finish(() => reject(new Error(d.error ?? t.errors.unexpected)));
    };
    const unsubscribe = deps.subscribe((ev) => {
      if (ev.type === 'disk.updated' || ev.type === 'disk.created') check(ev.disk);
      else if (ev.type === 'disk.deleted' && ev.id === disk.id) finish(() => reject(new Error(t.errors.unexpected)));
    });
    // Polling backs up the event stream (which may be reconnecting).
    const poll = setInterval(() => {
      deps.get(disk.id).then(check, () => {});
    }, deps.pollMs ?? 1000);
    const timer = setTimeout(() => finish(() => reject(new Error(t.errors.timeout))), deps.timeoutMs ?? 10 * 60_000);
  });
}
