import type { VmHint } from '@qemu-manager/contract';
import { createHash } from 'node:crypto';

/**
 * The stuck-boot hint (issue 14), from what the server already has: the sampler's CPU figure of
 * each round, a screenshot frame now and then (at most one per FRAME_EVERY_MS per VM, and only
 * while the VM's CPU is idle; the screenshot cache of the thumbnails serves it when it is fresh),
 * and the VM's media.
 *
 * - no-boot-device: the VM has no disk, no CD-ROM medium and no network in its boot order, and
 *   has run for the grace period: the firmware (SeaBIOS or OVMF) can only end at "No bootable
 *   device". SeaBIOS prints that to the screen and its debug port, never to the serial port
 *   (there is no sgabios with -nodefaults), so the media decide, not the text.
 * - idle-screen: the CPU was under IDLE_CPU_PERCENT in every sample and the screen's frames
 *   took no more than SCREEN_STATES distinct hashes (a blinking cursor), over at least `idleMs`
 *   (frames `idleMs` apart): waiting at a boot menu or a prompt. Frames are FRAME_EVERY_MS apart, or idleMs / 2
 *   when that is shorter (HINT_IDLE_MS under a minute is a test setting).
 *
 * A new QEMU process (another boot) or a guest reset starts the VM's tracker afresh.
 */

/** Below this CPU (% of one core) a sample counts as idle. */
export const IDLE_CPU_PERCENT = 5;
/** At most one screenshot frame per VM this often, for the hint. */
export const FRAME_EVERY_MS = 30_000;
/**
 * A screen "has not changed" while its frames take at most this many distinct values: a blinking
 * text cursor alternates between two frames (measured: QEMU's VGA text console at a shell prompt).
 */
export const SCREEN_STATES = 2;
/** How long the firmware gets to try everything before a VM with nothing to boot gets the hint. */
export const NO_BOOT_GRACE_MS = 15_000;

export interface HintSample {
  at: number;
  /** % of one core since the last sample; null when unknown (the first sample of a process). */
  cpuPercent: number | null;
  /** The VM has something the firmware could boot (a disk, a CD-ROM medium, or network boot). */
  bootable: boolean;
}

interface Hint {
  kind: VmHint['kind'];
  since: number;
}

/** One running VM's hint state (pure: time comes in with the samples). */
export class HintTracker {
  private cpuIdleSince: number | null = null;
  private frame: { hashes: Set<string>; since: number; confirmedAt: number } | null = null;
  private lastFrameAt = -Infinity;
  private bootable = true;
  private last: number;

  constructor(
    private readonly idleMs: number,
    /** When this boot started. */
    private readonly bootAt: number,
    private readonly frameEveryMs = FRAME_EVERY_MS,
  ) {
    this.last = bootAt;
  }

  /** One sampler round's figures. */
  sample(s: HintSample): void {
    this.last = s.at;
    this.bootable = s.bootable;
    if (s.cpuPercent === null) return; // unknown: neither idle nor busy
    if (s.cpuPercent >= IDLE_CPU_PERCENT) {
      this.cpuIdleSince = null;
      this.frame = null; // a busy guest may be drawing: the screen's stability is measured again
    } else if (this.cpuIdleSince === null) {
      this.cpuIdleSince = s.at;
    }
  }

  /** Whether a frame should be taken now (the VM looks idle, and none was taken lately). */
  wantsFrame(at: number): boolean {
    return this.bootable && this.cpuIdleSince !== null && at - this.lastFrameAt >= this.frameEveryMs;
  }

  /** A screenshot frame's hash taken at `at`. */
  frameSeen(hash: string, at: number): void {
    this.lastFrameAt = at;
    if (this.cpuIdleSince === null) return; // busy meanwhile: that frame says nothing
    if (this.frame && (this.frame.hashes.has(hash) || this.frame.hashes.size < SCREEN_STATES)) {
      this.frame.hashes.add(hash);
      this.frame.confirmedAt = at;
    } else {
      this.frame = { hashes: new Set([hash]), since: at, confirmedAt: at };
    }
  }

  /** The hint now, or null. */
  hint(): Hint | null {
    if (!this.bootable) {
      return this.last - this.bootAt >= Math.min(this.idleMs, NO_BOOT_GRACE_MS) ? { kind: 'no-boot-device', since: this.bootAt } : null;
    }
    if (this.cpuIdleSince === null || !this.frame) return null;
    const since = Math.max(this.cpuIdleSince, this.frame.since);
    // the screen is known unchanged from frame.since to frame.confirmedAt, the CPU idle from cpuIdleSince on
    return this.frame.confirmedAt - since >= this.idleMs ? { kind: 'idle-screen', since } : null;
  }
}

/** The hash a frame is compared by. */
export function frameHash(png: Buffer): string {
  return createHash('sha256').update(png).digest('hex');
}

export interface HintDeps {
  idleMs: number;
  /** The VM's screen as PNG (the screenshot cache's frame when fresh). */
  frame: (vmId: string) => Promise<Buffer>;
  /** Whether the VM has something to boot (null: the VM is gone). */
  bootable: (vmId: string) => boolean | null;
  /** The VM's hint changed (the app bumps the list's version and sends vm.updated). */
  changed: (vmId: string) => void;
  frameEveryMs?: number;
}

/** Every running VM's tracker, fed by the metrics sampler. */
export class HintService {
  private readonly vms = new Map<string, { pid: number; tracker: HintTracker; hint: Hint | null; framing: boolean }>();

  private readonly frameEveryMs: number;

  constructor(private readonly deps: HintDeps) {
    // every 30 s; a HINT_IDLE_MS under a minute (a test setting) needs frames idleMs / 2 apart
    this.frameEveryMs = deps.frameEveryMs ?? Math.min(FRAME_EVERY_MS, deps.idleMs / 2);
  }

  /** The VM's hint as the VM object shows it. */
  get(vmId: string): VmHint | null {
    const h = this.vms.get(vmId)?.hint ?? null;
    return h ? { kind: h.kind, since: new Date(h.since).toISOString() } : null;
  }

  /** A sampler round's figure for a running VM (`pid`: its QEMU process; another pid is another boot). */
  sample(vmId: string, pid: number, at: number, cpuPercent: number | null): void {
    const bootable = this.deps.bootable(vmId);
    if (bootable === null) return this.stopped(vmId);
    let s = this.vms.get(vmId);
    if (!s || s.pid !== pid) {
      const had = s?.hint ?? null;
      s = { pid, tracker: new HintTracker(this.deps.idleMs, at, this.frameEveryMs), hint: null, framing: false };
      this.vms.set(vmId, s);
      if (had) this.deps.changed(vmId);
    }
    s.tracker.sample({ at, cpuPercent, bootable });
    this.update(vmId);
    if (s.tracker.wantsFrame(at) && !s.framing) {
      const mine = s;
      mine.framing = true;
      this.deps
        .frame(vmId)
        .then((png) => {
          if (this.vms.get(vmId) !== mine) return;
          mine.tracker.frameSeen(frameHash(png), at);
          this.update(vmId);
        })
        .catch(() => {
          // no frame this time (QEMU busy, the VM stopping): the next idle round tries again
        })
        .finally(() => {
          mine.framing = false;
        });
    }
  }

  /** The VM does not run (or is gone): no hint. */
  stopped(vmId: string): void {
    const s = this.vms.get(vmId);
    if (!s) return;
    this.vms.delete(vmId);
    if (s.hint) this.deps.changed(vmId);
  }

  /** The guest was reset: its boot starts again. */
  reset(vmId: string): void {
    this.stopped(vmId); // the next round starts a fresh tracker
  }

  private update(vmId: string): void {
    const s = this.vms.get(vmId);
    if (!s) return;
    const next = s.tracker.hint();
    if (next?.kind === s.hint?.kind && next?.since === s.hint?.since) return;
    s.hint = next;
    this.deps.changed(vmId);
  }
}

/** Whether a VM's firmware has something to boot: a disk, a CD-ROM medium, or network boot. */
export function hasBootMedium(vm: { disks: readonly unknown[]; iso: string | null; driversIso: string | null; bootOrder: readonly string[] }): boolean {
  return vm.disks.length > 0 || vm.iso !== null || vm.driversIso !== null || vm.bootOrder.includes('network');
}
