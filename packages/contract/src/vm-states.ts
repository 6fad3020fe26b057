// The one table of VM states: for each status, which actions the server accepts (and the 409 code
// it refuses the others with), which the UI offers, and the statuses an action passes through.
// The server's checks and locks and the web UI's buttons both read it.
import type { ErrorCode } from './common.js';
import type { VmStatus } from './vms.js';

export const VM_STATUSES = ['stopped', 'starting', 'running', 'paused', 'stopping'] as const satisfies readonly VmStatus[];

export const VM_ACTIONS = [
  'start',
  'stop',
  'shutdown',
  'reboot',
  'reset',
  'pause',
  'resume',
  'delete',
  'console',
  'configure',
  'attachDisk',
  'detachDisk',
  'mountIso',
  'unmountIso',
  // disk resize (issue 10): qemu-img when stopped, QMP block_resize when live
  'resizeDisk',
  // backups: engine (issue 13): a running VM live (QMP blockdev-backup), a stopped one with qemu-img
  'backup',
] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

/** The codes a refusal by state uses (all 409). */
export type VmStateRefusal = Extract<ErrorCode, 'VM_NOT_STOPPED' | 'VM_NOT_RUNNING' | 'VM_BUSY'>;

/** `true` where the action is accepted, else the code of the 409 that refuses it. */
export type VmStateAnswer = true | VmStateRefusal;

export interface VmActionRule {
  /** What the server answers in each status. */
  readonly when: Readonly<Record<VmStatus, VmStateAnswer>>;
  /**
   * Where the UI offers the action, when that is fewer statuses than the server accepts
   * (never more). Absent: wherever the server accepts it.
   */
  readonly offer?: readonly VmStatus[];
  /** The statuses the VM passes through, the last one where it settles; empty: its status does not change. */
  readonly through: readonly VmStatus[];
  /** The action removes the VM (it has no status afterwards). */
  readonly removes?: true;
  /** The action holds the VM's lock while it runs (one at a time per VM). */
  readonly locks: boolean;
  /** Locked actions this one may run alongside and cut short (a power-off ends a graceful shutdown). */
  readonly cuts?: readonly VmAction[];
}

const B = 'VM_BUSY';
const R = 'VM_NOT_RUNNING';
const S = 'VM_NOT_STOPPED';

/** Accepted only when stopped: everything else is 409 VM_NOT_STOPPED. */
const whenStopped: VmActionRule['when'] = { stopped: true, starting: S, running: S, paused: S, stopping: S };
/** Needs a live guest: stopped is VM_NOT_RUNNING, a transition VM_BUSY. */
const whenLive: VmActionRule['when'] = { stopped: R, starting: B, running: true, paused: true, stopping: B };

export const VM_STATE_TABLE: Readonly<Record<VmAction, VmActionRule>> = {
  start: { when: whenStopped, through: ['starting', 'running'], locks: true },
  // A power-off also clears a VM left starting or stopping.
  stop: {
    when: { stopped: R, starting: true, running: true, paused: true, stopping: true },
    offer: ['running', 'paused'],
    through: ['stopping', 'stopped'],
    locks: true,
    cuts: ['shutdown', 'reboot'],
  },
  // The ACPI button of a paused guest is accepted, but only a running guest reacts: the UI offers it then.
  shutdown: { when: whenLive, offer: ['running'], through: ['stopping', 'stopped'], locks: true },
  // One lock from the shutdown to the start: no other action comes in between.
  reboot: { when: whenLive, offer: ['running'], through: ['stopping', 'stopped', 'starting', 'running'], locks: true },
  reset: { when: whenLive, through: [], locks: true },
  pause: { when: { stopped: R, starting: B, running: true, paused: B, stopping: B }, through: ['paused'], locks: true },
  resume: { when: { stopped: R, starting: B, running: B, paused: true, stopping: B }, through: ['running'], locks: true },
  // ?force=true powers the VM off first (a stop), then deletes.
  delete: { when: whenStopped, through: [], removes: true, locks: true },
  console: { when: { stopped: R, starting: R, running: true, paused: true, stopping: R }, through: [], locks: false },
  configure: { when: whenStopped, through: [], locks: true },
  attachDisk: { when: whenStopped, through: [], locks: true },
  detachDisk: { when: whenStopped, through: [], locks: true },
  // Live over QMP while QEMU runs; not while the VM is between states.
  mountIso: { when: { stopped: true, starting: B, running: true, paused: true, stopping: B }, through: [], locks: true },
  unmountIso: { when: { stopped: true, starting: B, running: true, paused: true, stopping: B }, through: [], locks: true },
  // disk resize (issue 10): offline with qemu-img, live with block_resize; not while between states.
  resizeDisk: { when: { stopped: true, starting: B, running: true, paused: true, stopping: B }, through: [], locks: true },
  // backups: engine (issue 13): held for the whole copy; the VM keeps running, a stop waits for it.
  backup: { when: { stopped: true, starting: B, running: true, paused: true, stopping: B }, through: [], locks: true },
};

/** What the server answers to `action` on a VM in `status`: true, or the 409 code. */
export function vmStateAnswer(status: VmStatus, action: VmAction): VmStateAnswer {
  return VM_STATE_TABLE[action].when[status];
}

/** Whether the server accepts `action` in `status`. */
export function vmActionAllowed(status: VmStatus, action: VmAction): boolean {
  return vmStateAnswer(status, action) === true;
}

/** Whether the UI offers `action` in `status` (a subset of what the server accepts). */
export function vmActionOffered(status: VmStatus, action: VmAction): boolean {
  const rule = VM_STATE_TABLE[action];
  return rule.offer ? rule.offer.includes(status) : rule.when[status] === true;
}

/** The status a VM settles in after `action` from `status` (null: the VM is gone). */
export function vmStatusAfter(status: VmStatus, action: VmAction): VmStatus | null {
  const rule = VM_STATE_TABLE[action];
  if (rule.removes) return null;
  return rule.through.at(-1) ?? status;
}

/** Whether `action` may take the VM's lock while `running` holds it. */
export function vmActionCuts(action: VmAction, running: VmAction): boolean {
  return VM_STATE_TABLE[action].cuts?.includes(running) ?? false;
}
