import { VM_STATE_TABLE, type ShutdownBody, type Vm, type VmStatus } from '@qemu-manager/contract';
import fs from 'node:fs';
import type { VncTarget } from '../console/proxy.js';
import { openImageLayers } from '../disks/image-check.js';
import { AppError, errorMessage } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';
import { isPortFree, lowestFreePort } from '../qemu/ports.js';
import { QmpCommandError } from '../qemu/qmp/errors.js';
import type { QmpEvent } from '../qemu/qmp/client.js';
import { runPaths } from '../qemu/rundir.js';
import type { StartDisk } from '../qemu/supervisor.js';
import { emitVm, requireAllowed, requireVm, type VmContext } from './context.js';
import type { OpLock } from './locks.js';
import { backingRule, refuseIsoLibrary } from './image-rules.js';
import type { VmRecord } from './repo.js';

const BUTTON_RESEND_MS = 1500;
const VNC_PORT_TAKEN = /Failed to find an available port|Address already in use/i;
const DEFAULT_SHUTDOWN_TIMEOUT_S = 60;

/** Maps a QMP run state to our status. */
export function statusFromQmp(qmpStatus: string): VmStatus {
  return qmpStatus === 'running' ? 'running' : qmpStatus === 'shutdown' ? 'stopping' : 'paused';
}

/** Power actions and the reaction to what QEMU reports. */
export class PowerService {
  /** Resolvers waiting for a VM's QEMU to exit (graceful shutdown). */
  private readonly exitWaiters = new Map<string, Set<() => void>>();

  constructor(private readonly ctx: VmContext) {}

  async start(id: string): Promise<{ vm: Vm; command: string }> {
    return this.ctx.locks.with(id, 'start', () => this.startLocked(id));
  }

  /** The start, with the VM's lock held by the caller. */
  private async startLocked(id: string): Promise<{ vm: Vm; command: string }> {
    const vm = requireVm(this.ctx, id);
    requireAllowed(vm, 'start', (status) => `VM is already ${status}`);
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
    const disks: StartDisk[] = [];
    for (const d of vm.disks) disks.push(await this.openDisk(vm, d, opened));
    const iso = vm.iso ? { fd: open(this.checkFile(vm.iso, 'ISO'), 'ISO', fs.constants.O_RDONLY) } : null;
    let port = await this.pickPort(vm);
    this.setStatus(id, 'starting', { vnc_port: port });
    try {
      const launch = () =>
        ctx.supervisor.start({
          qemuBinary: ctx.config.qemuBinary,
          vmId: id,
          name: vm.name,
          cpus: vm.cpus,
          memoryMiB: vm.memory,
          mac: vm.mac,
          vncDisplay: port - 5900,
          accel: ctx.accel,
          disks,
          iso,
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
      const { instance, command, status } = started;
      // The guest may already have powered off (onExit ran): only record a live instance.
      if (ctx.supervisor.get(id) === instance) {
        ctx.repo.update(id, {
          status: statusFromQmp(status),
          pid: instance.pid,
          pid_start: instance.pidStart,
          started_at: nowIso(),
          last_command: command,
        });
      } else {
        ctx.repo.update(id, { last_command: command });
      }
      return { vm: emitVm(ctx, id), command };
    } catch (err) {
      if (!ctx.supervisor.get(id)) this.setStatus(id, 'stopped', { pid: null, pid_start: null, started_at: null });
      throw err;
    }
  }

  /** Power-off. Resolves once QEMU has exited. */
  async stop(id: string): Promise<void> {
    const { ctx } = this;
    await ctx.locks.with(id, 'stop', async () => {
      const vm = requireVm(ctx, id);
      if (!ctx.supervisor.get(id)) {
        // Without a QEMU, a VM caught starting or stopping is set right.
        requireAllowed(vm, 'stop');
        this.markStopped(id);
        return;
      }
      // quit goes out first; the status write happens while QEMU exits.
      const stopped = ctx.supervisor.stop(id);
      this.setStatus(id, 'stopping');
      await stopped;
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
        throw new AppError(409, 'VM_BUSY', 'A power-off cut the reboot short; the VM is stopped');
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
    const exited = this.waitExit(id, timeoutMs);
    const press = () => this.qmp(id, 'system_powerdown').catch(() => undefined);
    await press();
    const timer = setInterval(() => void press(), BUTTON_RESEND_MS); // press() never rejects
    const ok = await exited.finally(() => clearInterval(timer));
    const cut = lock.cut;
    if (!ok) {
      if (!body.force) {
        throw new AppError(409, 'TIMEOUT', `The guest did not power off within ${timeoutMs / 1000} s; it is still running`);
      }
      // A power-off may cut a graceful shutdown short: it runs beside the lock we hold.
      await this.stop(id);
    }
    return cut;
  }

  async reset(id: string): Promise<Vm> {
    return this.simple(id, 'reset', 'system_reset');
  }

  async pause(id: string): Promise<Vm> {
    return this.simple(id, 'pause', 'stop');
  }

  async resume(id: string): Promise<Vm> {
    return this.simple(id, 'resume', 'cont');
  }

  /** Runs a QMP command on a VM's QEMU, turning QMP failures into clear API errors. */
  async qmp<T = unknown>(id: string, command: string, args?: Record<string, unknown>): Promise<T> {
    const inst = this.ctx.supervisor.get(id);
    if (!inst) throw new AppError(409, 'VM_NOT_RUNNING', 'VM is not running');
    try {
      return await inst.qmp.execute<T>(command, args);
    } catch (err) {
      if (err instanceof QmpCommandError) throw new AppError(409, 'QEMU_ERROR', `QEMU refused ${command}: ${err.desc}`);
      throw new AppError(500, 'QEMU_ERROR', `QEMU did not answer ${command}`, { cause: err });
    }
  }

  /**
   * Where the console proxy connects for a VM: its VNC socket in the server's run dir, or with
   * VNC_TCP=1 the TCP port from our own records.
   */
  vncTarget(id: string): VncTarget {
    const vm = requireVm(this.ctx, id);
    const refusal = (status: VmStatus) => `VM is ${status}; its console is available while it runs`;
    requireAllowed(vm, 'console', refusal);
    if (!this.ctx.supervisor.get(id)) throw new AppError(409, 'VM_NOT_RUNNING', refusal(vm.status));
    const socket = this.ctx.supervisor.vncSocket(id);
    return socket ? { path: socket } : { host: '127.0.0.1', port: vm.vnc_port };
  }

  // --- reactions to QEMU -------------------------------------------------------------------

  onEvent(id: string, ev: QmpEvent): void {
    const vm = this.ctx.repo.get(id);
    if (!vm) return;
    const next: VmStatus | null =
      ev.event === 'STOP' && vm.status === 'running'
        ? 'paused'
        : ev.event === 'RESUME' && vm.status === 'paused'
          ? 'running'
          : ev.event === 'SHUTDOWN' && vm.status !== 'stopped'
            ? 'stopping'
            : null;
    if (next && next !== vm.status) this.setStatus(id, next);
  }

  onExit(id: string): void {
    if (this.ctx.repo.get(id)) this.markStopped(id);
    const waiters = this.exitWaiters.get(id);
    this.exitWaiters.delete(id);
    for (const w of waiters ?? []) w();
  }

  /** At server start: re-adopt QEMUs that kept running, and fix any VM caught mid-operation. */
  async reconcile(): Promise<{ adopted: number; fixed: number }> {
    const { ctx } = this;
    let adopted = 0;
    let fixed = 0;
    for (const vm of ctx.repo.list()) {
      const pidFile = runPaths(ctx.supervisor.runDir(vm.id)).pidFile;
      const pid = vm.pid ?? readPid(pidFile);
      if (pid === null && vm.status === 'stopped') continue;
      let status: string | null = null;
      if (pid !== null) {
        try {
          status = await ctx.supervisor.adopt(vm.id, pid, vm.pid === pid ? vm.pidStart : null);
        } catch (err) {
          ctx.log.warn({ vmId: vm.id, err: errorMessage(err) }, 'could not adopt VM');
        }
      }
      const inst = ctx.supervisor.get(vm.id);
      if (status !== null && inst) {
        adopted++;
        ctx.repo.update(vm.id, {
          status: statusFromQmp(status),
          pid: inst.pid,
          pid_start: inst.pidStart,
          started_at: vm.startedAt ?? nowIso(),
        });
        ctx.log.info({ vmId: vm.id, pid: inst.pid, status }, 're-adopted running VM');
      } else {
        fixed++;
        ctx.supervisor.releaseFiles(vm.id);
        ctx.repo.update(vm.id, { status: 'stopped', pid: null, pid_start: null, started_at: null });
        ctx.log.info({ vmId: vm.id, was: vm.status }, 'VM is not running; marked stopped');
      }
    }
    return { adopted, fixed };
  }

  // --- helpers -----------------------------------------------------------------------------

  private async simple(
    id: string,
    op: 'reset' | 'pause' | 'resume',
    command: string,
  ): Promise<Vm> {
    // Where the VM lands (the state table): paused, running, or unchanged for a reset.
    const next = VM_STATE_TABLE[op].through.at(-1);
    return this.ctx.locks.with(id, op, async () => {
      requireAllowed(requireVm(this.ctx, id), op, (status) => `Cannot ${op} a VM that is ${status}`);
      await this.qmp(id, command);
      if (next) this.ctx.repo.update(id, { status: next });
      return emitVm(this.ctx, id);
    });
  }

  private waitExit(id: string, timeoutMs: number): Promise<boolean> {
    if (!this.ctx.supervisor.get(id)) return Promise.resolve(true);
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
  private async openDisk(vm: VmRecord, d: VmRecord['disks'][number], opened: number[]): Promise<StartDisk> {
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
      const layers = await openImageLayers(ctx.storage, real, format, {
        open: (file, index) => ctx.storage.openFile(file, 'disk', index === 0 ? fs.constants.O_RDWR : fs.constants.O_RDONLY),
        checkBacking: backingRule(ctx, real),
      });
      opened.push(...layers.map((l) => l.fd));
      return { layers: layers.map((l) => ({ format: l.format, fd: l.fd })) };
    } catch (err) {
      // A missing file stays 409 FILE_NOT_FOUND; any image refusal is a failed start.
      if (err instanceof AppError && err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 409) {
        throw new AppError(422, 'QEMU_START_FAILED', `The VM cannot start with the disk ${d.path}: ${err.message}`, { cause: err });
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
      if (p === null) throw new AppError(409, 'NO_FREE_PORT', `VNC port ${vm.vnc_port} is taken and no free port is left`);
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
      throw new AppError(409, 'FILE_NOT_FOUND', `The ${what} file is missing: ${p}`);
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

/** The pid QEMU wrote (in its own directory: read without following a symlink, and only a little). */
function readPid(file: string): number | null {
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const buf = Buffer.alloc(32);
    let len: number;
    try {
      if (!fs.fstatSync(fd).isFile()) return null;
      len = fs.readSync(fd, buf, 0, buf.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    const n = Number.parseInt(buf.subarray(0, len).toString('utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
