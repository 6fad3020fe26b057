import { vmActionCuts, type VmAction } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';

/** What takes a VM's lock: the actions of the VM state table that lock (the console does not). */
export type VmOp = Exclude<VmAction, 'console'>;

/** A held lock: released once (again is harmless); it may hand over to the next step of its action. */
export interface OpLock {
  release(): void;
  /**
   * Holds the lock on as `op` (a reboot's start step is a start), if no other held operation
   * conflicts with `op`: else 409 VM_BUSY and the lock is still held as before.
   */
  become(op: VmOp): void;
  /** Whether an operation that cuts this one short (a power-off) took the lock meanwhile. */
  readonly cut: boolean;
}

/**
 * One operation at a time per VM. A second request while one runs is refused with 409 at once
 * (never queued), so two starts can never spawn two QEMUs. Which operation may run alongside
 * another (a power-off cutting a graceful shutdown short) comes from the VM state table.
 */
export class OpLocks {
  private readonly held = new Map<string, Set<Held>>();

  current(vmId: string): VmOp[] {
    return [...(this.held.get(vmId) ?? [])].map((h) => h.op);
  }

  /** Takes the lock for `op`: 409 VM_BUSY when another operation holds it and `op` may not cut it. */
  hold(vmId: string, op: VmOp): OpLock {
    const all = this.held.get(vmId) ?? new Set<Held>();
    checkFree(all, op, null);
    for (const other of all) other.cut = true;
    const mine: Held = { op, cut: false };
    all.add(mine);
    this.held.set(vmId, all);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        all.delete(mine);
        if (all.size === 0 && this.held.get(vmId) === all) this.held.delete(vmId);
      },
      become: (next: VmOp) => {
        checkFree(all, next, mine);
        mine.op = next;
      },
      get cut() {
        return mine.cut;
      },
    };
  }

  acquire(vmId: string, op: VmOp): () => void {
    const lock = this.hold(vmId, op);
    return () => lock.release();
  }

  async with<T>(vmId: string, op: VmOp, fn: () => T | Promise<T>): Promise<T> {
    const lock = this.hold(vmId, op);
    try {
      return await fn();
    } finally {
      lock.release();
    }
  }
}

interface Held {
  op: VmOp;
  cut: boolean;
}

function checkFree(all: Set<Held>, op: VmOp, self: Held | null): void {
  for (const running of all) {
    if (running !== self && !vmActionCuts(op, running.op)) {
      throw new AppError('VM_BUSY', `VM is busy: ${running.op} is in progress`);
    }
  }
}
