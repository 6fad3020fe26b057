import { VM_STATE_TABLE, type ErrorCode, type ShutdownBody, type Vm, type VmStatus } from '@qemu-manager/contract';
import fs from 'node:fs';
import { openImageLayers } from '../lib/image-check.js';
import { AppError, errorMessage } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import { isPortFree, lowestFreePort } from '../lib/ports.js';
import type { ConsoleEndpoint, LaunchDisk, LaunchNic, LaunchSeed, RuntimeEvent } from '../runtime/port.js';
import { emitVm, requireAllowed, requireVm, type VmContext } from './context.js';
import type { OpLock } from './locks.js';
import { backingRule, refuseIsoLibrary } from './image-rules.js';
import { refuseBase } from '../disks/chain.js';
import type { VmRecord } from './repo.js';
import { cdromCount, layoutProblem, resolveCdMedium } from './hardware.js'; // hardware options (issue 12)
import { refuseTemplate } from './template.js'; // templates (issue 12)

const BUTTON_RESEND_MS = 1500;
const VNC_PORT_TAKEN = /Failed to find an available port|Address already in use/i;
const DEFAULT_SHUTDOWN_TIMEOUT_S = 60;
/** What the storage and image checks refuse an image with; at start, each is a failed start. */
const IMAGE_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PATH_NOT_ALLOWED', 'IMAGE_NOT_ALLOWED', 'NOT_A_REGULAR_FILE', 'FILE_NOT_FOUND', 'VALIDATION', 'BAD_REQUEST']);

/** Power actions and the reaction to what QEMU reports. */
export class PowerService {
  /** Resolvers waiting for a VM's QEMU to exit (graceful shutdown). */
  private readonly exitWaiters = new Map<string, Set<() => void>>();

  /**
   * Alerts (issue 14): told when a VM stopped without being asked (its QEMU exited while it was
   * running or paused and no stop or shutdown was under way) or its guest panicked; once per run.
   */
  onCrash: ((vm: { id: string; name: string }, reason: 'exited' | 'panicked') => void) | null = null;
  /**
   * Networks (issue 11): the VM's NICs as the runtime gets them (user NICs with their forwards,
   * the others on their bridge); it refuses (4xx) a NIC whose network cannot be used here. Set by
   * the app; null: the runtime's default (one user-mode NIC).
   */
  launchNics: ((vm: VmRecord) => LaunchNic[]) | null = null;
  /** VMs whose exit a stop or shutdown asked for, and those already reported crashed (this run). */
  private readonly exitAsked = new Set<string>();
  private readonly crashTold = new Set<string>();

  /** Stops listening to the runtime (the app is closing). */
  readonly close: () => void;

  constructor(
    private readonly ctx: VmContext,
    /** Cloud-init (issue 12): the seed documents of a VM that has a config, else null. */
    private readonly seeds: { seed(vmId: string, vmName: string): LaunchSeed | null } = { seed: () => null },
  ) {
    this.close = ctx.runtime.subscribe((ev) => this.onEvent(ev));
  }

  async start(id: string): Promise<{ vm: Vm; command: string }> {
    return this.ctx.locks.with(id, 'start', () => this.startLocked(id));
  }

  /** The start, with the VM's lock held by the caller. */
  private async startLocked(id: string): Promise<{ vm: Vm; command: string }> {
    const vm = requireVm(this.ctx, id);
    requireAllowed(vm, 'start', (status) => `VM is already ${status}`);
    refuseTemplate(vm, 'started'); // templates (issue 12)
    // QEMU gets descriptors, never paths: every layer is opened here, below its storage root
    // without following a symlink, and stays open until QEMU has inherited it.
    const opened: number[] = [];
    try {
      return await this.launch(vm, opened);
    } finally {
      for (const fd of opened) fs.closeSync(fd);
    }
  }

  private async launch(vm: VmRecord, opened: number[]): Promise<{ vm: Vm; command: string }> {
    const { ctx } = this;
    const id = vm.id;
    const open = (file: string, what: 'disk' | 'ISO', flags: number): number => {
      const f = ctx.storage.openFile(file, what, flags);
      opened.push(f.fd);
      return f.fd;
    };
    const disks: LaunchDisk[] = [];
    for (const d of vm.disks) disks.push(await this.openDisk(vm, d, opened));
    const iso = vm.iso ? { fd: open(this.checkFile(vm.iso, 'ISO'), 'ISO', fs.constants.O_RDONLY) } : null;
    const seed = this.seeds.seed(id, vm.name); // cloud-init (issue 12): rendered before anything changes
    // hardware options (issue 12): the drivers CD-ROM passes the ISO rules again; the disks and
    // CD-ROMs must fit the machine's controllers.
    const driversIso = vm.driversIso ? { fd: open(resolveCdMedium(ctx, this.checkFile(vm.driversIso, 'ISO')), 'ISO', fs.constants.O_RDONLY) } : null;
    const nics = this.launchNics?.(vm); // networks (issue 11): refused before anything changes
    const layout = layoutProblem(vm, vm.disks.length, cdromCount(vm, seed ? 1 : 0));
    if (layout) throw new AppError('QEMU_START_FAILED', `The VM cannot start: ${layout}`);
    let port = await this.pickPort(vm);
    this.setStatus(id, 'starting', { vnc_port: port });
    try {
      const launch = () =>
        ctx.runtime.start({
          vmId: id,
          name: vm.name,
          cpus: vm.cpus,
          memoryMiB: vm.memory,
          mac: vm.mac,
          vncDisplay: port - 5900,
          accel: ctx.accel,
          disks,
          iso,
          // hardware options (issue 12)
          hardware: {
            firmware: vm.firmware,
            secureBoot: vm.secureBoot,
            tpm: vm.tpm,
            machine: vm.machine,
            diskBus: vm.diskBus,
            nicModel: vm.nicModel,
            bootOrder: vm.bootOrder,
          },
          driversIso,
          cloudInit: seed, // cloud-init (issue 12)
          ...(nics ? { nics } : {}), // networks (issue 11)
        });
      let started: Awaited<ReturnType<typeof launch>> | undefined;
      // Another program may grab the port between our check and QEMU's bind: move on and retry.
      for (let attempt = 1; !started; attempt++) {
        try {
          started = await launch();
        } catch (err) {
          if (attempt >= 3 || !ctx.config.vncTcp || !VNC_PORT_TAKEN.test(errorMessage(err))) throw err;
          port = await this.pickPort({ ...vm, vnc_port: port });
          ctx.repo.update(id, { vnc_port: port });
        }
      }
      const { command, state, pid, pidStart } = started;
      // The guest may already have powered off (its exit was handled): only record a live process.
      if (ctx.runtime.process(id)?.pid === pid) {
        ctx.repo.update(id, {
          status: state,
          pid,
          pid_start: pidStart,
          started_at: nowIso(),
          last_command: command,
        });
      } else {
        ctx.repo.update(id, { last_command: command });
      }
      return { vm: emitVm(ctx, id), command };
    } catch (err) {
      if (!ctx.runtime.process(id)) this.setStatus(id, 'stopped', { pid: null, pid_start: null, started_at: null });
      throw err;
    }
  }

  /** Power-off. Resolves once QEMU has exited. */
  async stop(id: string): Promise<void> {
    const { ctx } = this;
    await ctx.locks.with(id, 'stop', async () => {
      const vm = requireVm(ctx, id);
      if (!ctx.runtime.process(id)) {
        // Without a QEMU, a VM caught starting or stopping is set right.
        requireAllowed(vm, 'stop');
        this.markStopped(id);
        return;
      }
      this.exitAsked.add(id); // alerts (issue 14)
      // quit goes out first; the status write happens while QEMU exits.
      const stopped = ctx.runtime.stop(id);
      this.setStatus(id, 'stopping');
      await stopped.catch((err: unknown) => {
        if (ctx.runtime.process(id)) this.exitAsked.delete(id); // alerts (issue 14): still running
        throw err;
      });
    });
  }

  /**
   * ACPI power button, pressed again every 1.5 s (a press before the guest listens is lost), until
   * QEMU exits or the timeout passes; then power-off if `force`, else 409 with the VM still running.
   */
  async shutdown(id: string, body: ShutdownBody = {}): Promise<Vm> {
    const lock = this.ctx.locks.hold(id, 'shutdown');
    try {
      await this.shutdownLocked(id, body, lock, 'shutdown');
      return emitVm(this.ctx, id);
    } finally {
      lock.release();
    }
  }

  /**
   * Graceful restart (like Proxmox): ACPI shutdown, then start again, under one lock from the
   * shutdown to the start: nothing else comes in between. A power-off meanwhile ends the reboot
   * (409 VM_BUSY, the VM stays stopped); after the shutdown the lock is held as a start's.
   */
  async reboot(id: string, body: ShutdownBody = {}): Promise<{ vm: Vm; command: string }> {
    const lock = this.ctx.locks.hold(id, 'reboot');
    try {
      if (await this.shutdownLocked(id, body, lock, 'reboot')) {
        throw new AppError('VM_BUSY', 'A power-off cut the reboot short; the VM is stopped');
      }
      lock.become('start');
      return await this.startLocked(id);
    } finally {
      lock.release();
    }
  }

  /** The graceful shutdown under `lock`. True when a power-off by somebody else cut it short. */
  private async shutdownLocked(id: string, body: ShutdownBody, lock: OpLock, op: 'shutdown' | 'reboot'): Promise<boolean> {
    const { ctx } = this;
    const timeoutMs = (body.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT_S) * 1000;
    requireAllowed(requireVm(ctx, id), op, (status) => `VM is ${status}`);
    this.exitAsked.add(id); // alerts (issue 14)
    const exited = this.waitExit(id, timeoutMs);
    // the guest agent (issue 14): guest-shutdown when it answers (mode agent: only that), else
    // (mode acpi, or no agent) the power button, pressed again until the guest goes
    let viaAgent = false;
    if (body.mode !== 'acpi' && ctx.runtime.agentShutdown) {
      try {
        await ctx.runtime.agentShutdown(id);
        viaAgent = true;
      } catch (err) {
        if (body.mode === 'agent') {
          throw err;
        }
      }
    } else if (body.mode === 'agent') {
      throw new AppError('AGENT_UNAVAILABLE', 'This runtime has no guest agent');
    }
    const press = () => ctx.runtime.powerdown(id).catch(() => undefined);
    if (!viaAgent) await press();
    const timer = viaAgent ? null : setInterval(() => void press(), BUTTON_RESEND_MS); // press() never rejects
    const ok = await exited.finally(() => timer && clearInterval(timer));
    const cut = lock.cut;
    if (!ok) {
      if (!body.force) {
        this.exitAsked.delete(id); // alerts (issue 14): it keeps running; a later exit is unasked again
        throw new AppError('TIMEOUT', `The guest did not power off within ${timeoutMs / 1000} s; it is still running`);
      }
      // A power-off may cut a graceful shutdown short: it runs beside the lock we hold.
      await this.stop(id);
    }
    return cut;
  }

  async reset(id: string): Promise<Vm> {
    return this.simple(id, 'reset', () => this.ctx.runtime.reset(id));
  }

  async pause(id: string): Promise<Vm> {
    return this.simple(id, 'pause', () => this.ctx.runtime.pause(id));
  }

  async resume(id: string): Promise<Vm> {
    return this.simple(id, 'resume', () => this.ctx.runtime.resume(id));
  }

  /**
   * Where the console proxy connects for a VM: its VNC socket in the server's run dir, or with
   * VNC_TCP=1 the TCP port from our own records.
   */
  vncTarget(id: string): ConsoleEndpoint {
    const vm = requireVm(this.ctx, id);
    const refusal = (status: VmStatus) => `VM is ${status}; its console is available while it runs`;
    requireAllowed(vm, 'console', refusal);
    const endpoint = this.ctx.runtime.console(id);
    if (!endpoint) throw new AppError('VM_NOT_RUNNING', refusal(vm.status));
    return endpoint;
  }

  // --- reactions to the runtime ------------------------------------------------------------

  private onEvent(ev: RuntimeEvent): void {
    if (ev.type === 'exited') return this.onExit(ev.vmId);
    if (ev.type === 'panicked') return this.tellCrash(ev.vmId, 'panicked'); // alerts (issue 14)
    if (ev.type === 'killed') return void (this.exitAsked.has(ev.vmId) || this.tellCrash(ev.vmId, 'exited')); // alerts (issue 14)
    if (ev.type === 'agent') {
      // the guest agent (issue 14): the VM object's agent.connected changed
      if (!this.ctx.repo.get(ev.vmId)) return;
      this.ctx.repo.version++;
      emitVm(this.ctx, ev.vmId);
      return;
    }
    const id = ev.vmId;
    const vm = this.ctx.repo.get(id);
    if (!vm) return;
    const next: VmStatus | null =
      ev.type === 'paused' && vm.status === 'running'
        ? 'paused'
        : ev.type === 'resumed' && vm.status === 'paused'
          ? 'running'
          : ev.type === 'shutdown' && vm.status !== 'stopped'
            ? 'stopping'
            : null;
    if (next && next !== vm.status) this.setStatus(id, next);
  }

  /** Alerts (issue 14): reports a crash of VM `id` once per run. */
  private tellCrash(id: string, reason: 'exited' | 'panicked'): void {
    const vm = this.ctx.repo.get(id);
    if (!vm || this.crashTold.has(id)) return;
    this.crashTold.add(id);
    try {
      this.onCrash?.({ id, name: vm.name }, reason);
    } catch (err) {
      this.ctx.log.warn({ vmId: id, err: errorMessage(err) }, 'a crash could not be reported');
    }
  }

  private onExit(id: string): void {
    // alerts (issue 14): an exit of a running or paused VM that no stop or shutdown asked for
    const was = this.ctx.repo.get(id)?.status;
    if (!this.exitAsked.has(id) && (was === 'running' || was === 'paused')) this.tellCrash(id, 'exited');
    this.exitAsked.delete(id);
    this.crashTold.delete(id);
    if (this.ctx.repo.get(id)) this.markStopped(id);
    const waiters = this.exitWaiters.get(id);
    this.exitWaiters.delete(id);
    for (const w of waiters ?? []) w();
  }

  /** At server start: re-adopt VMs that kept running, and fix any VM caught mid-operation. */
  async reconcile(): Promise<{ adopted: number; fixed: number }> {
    const { ctx } = this;
    let adopted = 0;
    let fixed = 0;
    for (const vm of ctx.repo.list()) {
      const recorded = vm.pid !== null ? { pid: vm.pid, pidStart: vm.pidStart } : null;
      // networks (issue 11): the NICs as recorded (hot-plugged ones too), so live NIC and forward changes work on it
      let nics: LaunchNic[] | undefined;
      try {
        nics = this.launchNics?.(vm);
      } catch {
        nics = undefined; // its network is not usable now: adopted without them (they cannot be changed live)
      }
      const found = await ctx.runtime.adopt(vm.id, recorded, nics);
      if (found) {
        adopted++;
        ctx.repo.update(vm.id, {
          status: found.state,
          pid: found.process.pid,
          pid_start: found.process.pidStart,
          started_at: vm.startedAt ?? nowIso(),
        });
        ctx.log.info({ vmId: vm.id, pid: found.process.pid, state: found.state }, 're-adopted running VM');
      } else {
        // Whatever a start or a run cut short by the crash left (lent files, sockets) goes back.
        ctx.runtime.release(vm.id);
        if (vm.status === 'stopped' && vm.pid === null) continue;
        fixed++;
        ctx.repo.update(vm.id, { status: 'stopped', pid: null, pid_start: null, started_at: null });
        ctx.log.info({ vmId: vm.id, was: vm.status }, 'VM is not running; marked stopped');
      }
    }
    return { adopted, fixed };
  }

  // --- helpers -----------------------------------------------------------------------------

  private async simple(id: string, op: 'reset' | 'pause' | 'resume', act: () => Promise<void>): Promise<Vm> {
    // Where the VM lands (the state table): paused, running, or unchanged for a reset.
    const next = VM_STATE_TABLE[op].through.at(-1);
    return this.ctx.locks.with(id, op, async () => {
      requireAllowed(requireVm(this.ctx, id), op, (status) => `Cannot ${op} a VM that is ${status}`);
      await act();
      if (next) this.ctx.repo.update(id, { status: next });
      return emitVm(this.ctx, id);
    });
  }

  private waitExit(id: string, timeoutMs: number): Promise<boolean> {
    if (!this.ctx.runtime.process(id)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const set = this.exitWaiters.get(id) ?? new Set();
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        set.delete(done);
        resolve(false);
      }, timeoutMs);
      set.add(done);
      this.exitWaiters.set(id, set);
    });
  }

  /**
   * Opens an attached disk for QEMU and checks exactly the descriptors QEMU will get: the top layer
   * read-write, backing layers read-only (QEMU's fdsets need the access mode to match), each checked
   * by imageLayers from that descriptor, so a file swapped in after attach (or after any earlier
   * check) is what gets checked. A managed disk opens in the format of the disks table (what it was
   * created as), never the one recorded at attach time, which an earlier version probed. No backing
   * layer may be anybody's disk or an ISO library file; the image itself is no ISO library file.
   * The descriptors go to `opened` (closed by start); a refusal is 422 QEMU_START_FAILED.
   */
  private async openDisk(vm: VmRecord, d: VmRecord['disks'][number], opened: number[]): Promise<LaunchDisk> {
    const { ctx } = this;
    try {
      const real = this.checkFile(d.path, 'disk');
      const managed = ctx.disks.byPath(d.path) ?? ctx.disks.byPath(real);
      const format: string = managed?.format ?? d.format ?? 'raw';
      if (managed && d.format !== managed.format) {
        ctx.log.warn(
          { vmId: vm.id, disk: real, attachedAs: d.format, created: managed.format },
          'a managed disk was attached in another format than it was created with; it opens as created',
        );
      }
      refuseIsoLibrary(ctx, real, 'disk');
      if (managed) refuseBase(ctx.disks, managed, 'written by a running VM'); // clones and backing chains (issue 10)
      const layers = await openImageLayers(ctx.storage, real, format, {
        open: (file, index) => ctx.storage.openFile(file, 'disk', index === 0 ? fs.constants.O_RDWR : fs.constants.O_RDONLY),
        checkBacking: backingRule(ctx, real),
      });
      opened.push(...layers.map((l) => l.fd));
      return { layers: layers.map((l) => ({ format: l.format, fd: l.fd })) };
    } catch (err) {
      // A missing file stays FILE_MISSING; any refusal of the image is a failed start.
      if (err instanceof AppError && IMAGE_REFUSALS.has(err.code)) {
        throw new AppError('QEMU_START_FAILED', `The VM cannot start with the disk ${d.path}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * The VM's VNC port. With VNC_TCP=1 it must be free on the host: if it is not, the lowest port
   * that no other VM has and nothing listens on. Without, no TCP port is used (the number only
   * names the display) and it is kept.
   */
  private async pickPort(vm: VmRecord): Promise<number> {
    if (!this.ctx.config.vncTcp || (await isPortFree(vm.vnc_port))) return vm.vnc_port;
    const taken = this.ctx.repo.usedPorts();
    for (let from = 5900; ; ) {
      const p = lowestFreePort(taken, from);
      if (p === null) throw new AppError('NO_FREE_PORT', `VNC port ${vm.vnc_port} is taken and no free port is left`);
      if (await isPortFree(p)) {
        this.ctx.log.warn({ vmId: vm.id, from: vm.vnc_port, to: p }, 'VNC port taken by another program; moving');
        return p;
      }
      taken.add(p);
      from = p + 1;
    }
  }

  private checkFile(p: string, what: 'disk' | 'ISO'): string {
    if (!fs.existsSync(p)) {
      throw new AppError('FILE_MISSING', `The ${what} file is missing: ${p}`);
    }
    return this.ctx.storage.resolveFile(p, what);
  }

  private setStatus(id: string, status: VmStatus, extra: Parameters<VmContext['repo']['update']>[1] = {}): void {
    this.ctx.repo.update(id, { ...extra, status });
    emitVm(this.ctx, id);
  }

  private markStopped(id: string): void {
    this.setStatus(id, 'stopped', { pid: null, pid_start: null, started_at: null });
  }
}
