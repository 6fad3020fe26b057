import { AppError } from '../lib/errors.js';

export type VmOp =
  | 'start'
  | 'stop'
  | 'shutdown'
  | 'reboot'
  | 'reset'
  | 'pause'
  | 'resume'
  | 'delete'
  | 'configure';

/** Operations a running operation lets through: a power-off may cut a graceful shutdown short. */
const PREEMPTS: Partial<Record<VmOp, readonly VmOp[]>> = {
  stop: ['shutdown', 'reboot'],
};

/**
 * One operation at a time per VM. A second request while one runs is refused with 409 at once
 * (never queued), so two starts can never spawn two QEMUs.
 */
export class OpLocks {
  private readonly held = new Map<string, Set<VmOp>>();

  current(vmId: string): VmOp[] {
    return [...(this.held.get(vmId) ?? [])];
  }

  acquire(vmId: string, op: VmOp): () => void {
    const ops = this.held.get(vmId) ?? new Set<VmOp>();
    const allowed = PREEMPTS[op] ?? [];
    for (const running of ops) {
      if (!allowed.includes(running)) {
        throw new AppError(409, 'VM_BUSY', `VM is busy: ${running} is in progress`);
      }
    }
    ops.add(op);
    this.held.set(vmId, ops);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      ops.delete(op);
      if (ops.size === 0 && this.held.get(vmId) === ops) this.held.delete(vmId);
    };
  }

  async with<T>(vmId: string, op: VmOp, fn: () => Promise<T>): Promise<T> {
    const release = this.acquire(vmId, op);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
