import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { StorageRoots } from '../lib/storage.js';
import type {
  BackupDiskState,
  BlockJob,
  ConsoleEndpoint,
  LiveBackup,
  Launched,
  RunState,
  RuntimeEvent,
  RuntimeProcess,
  LaunchHardware,
  SerialChannel,
  VmLaunch,
  VmRuntime,
  VmStats,
  GuestAgentInfo,
  GuestAgentStatus,
  ProcessUsage,
  LaunchNic,
  TapDevices,
  UserForward,
} from '../runtime/port.js';
import { hostfwdHostSide, hostfwdRule } from './argv.js'; // networks (issue 11)
import { readProcessUsage } from '../lib/procfs.js'; // metrics (issue 14)
import type { GuestIsolation } from './guest-isolation.js';
import type { IdentityPool } from './identity.js';
import type { QmpEvent } from './qmp/client.js';
import type { QmpCommands, QmpRunState } from './qmp/commands.js';
import { QmpCommandError, qmpCall } from './qmp/errors.js';
import { BALLOON_ID, BALLOON_POLL_SECONDS, parseBalloonStats, type GuestMemory } from './balloon.js'; // metrics (issue 14)
import { runPaths } from './rundir.js';
import { Supervisor } from './supervisor.js';
import { readSerialLogTail } from './serial.js'; // serial console (issue 14)
import { AgentCommandError, type AgentSession, type AgentSessionOptions } from './agent.js'; // the guest agent (issue 14)
import { OVMF_DIR, ensureStateDir, openFirmware } from './firmware.js'; // hardware options (issue 12)
import { removeSeed, writeSeed } from './cloud-init-seed.js'; // cloud-init (issue 12)
import { backupDiskStates, recoverLiveBackups, runLiveBackup } from './backup-job.js'; // backups: engine (issue 13)

/** The CD-ROM drive's id in the QEMU command line (argv.ts). */
const CD_DRIVE = 'cd0';

/** Maps a QMP run state to the runtime's: anything that is neither running nor shut down counts as paused. */
export function runStateOf(qmp: string): RunState {
  return qmp === 'running' ? 'running' : qmp === 'shutdown' ? 'stopping' : 'paused';
}

const EVENTS: Partial<Record<string, 'paused' | 'resumed' | 'shutdown' | 'reset' | 'panicked'>> = {
  STOP: 'paused',
  RESUME: 'resumed',
  SHUTDOWN: 'shutdown',
  RESET: 'reset',
  GUEST_PANICKED: 'panicked', // alerts (issue 14): from the pvpanic device
};

/** The runtime event a QMP event of a VM's state becomes (null: not one of them). */
export function stateEventOf(qmpEvent: string): 'paused' | 'resumed' | 'shutdown' | 'reset' | 'panicked' | null {
  return EVENTS[qmpEvent] ?? null;
}

const JOB_EVENTS = new Set(['BLOCK_JOB_READY', 'BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED', 'BLOCK_JOB_ERROR']);

export interface QemuRuntimeOptions {
  qemuBinary: string;
  /** The server's run directory: run/<vm id>/ per VM. */
  runRoot: string;
  pool: IdentityPool;
  storage: StorageRoots;
  isolation: Pick<GuestIsolation, 'confine' | 'confineAdopted'>;
  /** VNC_TCP=1: VNC on 127.0.0.1:<5900 + display> instead of the VM's unix socket. */
  vncTcp: boolean;
  log: Logger;
  // hardware options (issue 12)
  /** Where each VM keeps its UEFI variable store and TPM state (`<stateRoot>/<vm id>/`). */
  stateRoot?: string;
  qemuImgBinary?: string;
  swtpmBinary?: string;
  ovmfDir?: string;
  /** Cloud-init (issue 12): the program that writes the NoCloud seed volume. */
  xorrisoBinary?: string;
  /** The guest agent (issue 14): timeouts and backoff (tests shorten them). */
  agent?: AgentSessionOptions;
  /** Networks (issue 11): the host's taps for NICs on bridges; absent: such NICs cannot start. */
  taps?: TapDevices;
  /** Networks (issue 11): how long an unplug waits for the guest (default 10 s). */
  unplugTimeoutMs?: number;
}

/**
 * The QEMU adapter of the runtime port: one detached QEMU process per VM (the Supervisor), driven
 * over QMP with the typed commands of qmp/commands.ts. QMP failures become AppErrors here.
 */
/** The bound of a guest's reported memory when the VM's own size is not known (an adopted VM). */
const MAX_GUEST_MEMORY = 2 ** 44;

export class QemuRuntime implements VmRuntime {
  private readonly supervisor: Supervisor;
  private readonly listeners = new Set<(ev: RuntimeEvent) => void>();
  /** Metrics (issue 14): per VM, the process whose balloon was asked for statistics, and the VM's memory (the bound of what its guest may report). */
  private readonly balloon = new Map<string, { process: string | null; memoryBytes: number }>();

  constructor(private readonly opts: QemuRuntimeOptions) {
    this.supervisor = new Supervisor(opts.runRoot, { beforeSpawn: (who) => opts.isolation.confine(who) }, opts.log, opts.pool, {
      storage: opts.storage,
      vncTcp: opts.vncTcp,
      swtpm: { binary: opts.swtpmBinary ?? 'swtpm', stateDir: (vmId) => path.join(this.stateDir(vmId), 'tpm') },
      ...(opts.agent ? { agent: opts.agent } : {}), // the guest agent (issue 14)
      ...(opts.taps ? { taps: opts.taps } : {}), // networks (issue 11)
      ...(opts.unplugTimeoutMs !== undefined ? { unplugTimeoutMs: opts.unplugTimeoutMs } : {}),
    });
    this.supervisor.on('event', (vmId, ev) => this.onQmpEvent(vmId, ev));
    this.supervisor.on('agent', (vmId, connected) => this.emit({ vmId, type: 'agent', connected })); // the guest agent (issue 14)
    this.supervisor.on('exit', (vmId) => this.emit({ vmId, type: 'exited' }));
  }

  async start(def: VmLaunch): Promise<Launched> {
    const hw: LaunchHardware = def.hardware ?? { firmware: 'bios', secureBoot: false, tpm: false };
    // UEFI (issue 12): the firmware and the VM's own variable store, as descriptors.
    const fw = hw.firmware === 'uefi'
      ? await openFirmware({
          ovmfDir: this.opts.ovmfDir ?? OVMF_DIR,
          qemuImgBinary: this.opts.qemuImgBinary ?? 'qemu-img',
          stateDir: this.stateDir(def.vmId),
          secureBoot: hw.secureBoot,
        })
      : null;
    let seedFd: number | null = null; // cloud-init (issue 12)
    try {
      if (hw.tpm) ensureStateDir(this.stateDir(def.vmId)); // its TPM state lives there too
      // Cloud-init (issue 12): the seed is written afresh at each start; none without a config.
      if (def.cloudInit) {
        ensureStateDir(this.stateDir(def.vmId));
        seedFd = await writeSeed({ xorriso: this.opts.xorrisoBinary ?? 'xorriso', stateDir: this.stateDir(def.vmId), seed: def.cloudInit });
      } else {
        removeSeed(this.stateDir(def.vmId));
      }
      const uefi = fw ? { ...fw, secureBoot: hw.secureBoot } : null;
      const r = await this.supervisor.start({
        ...def,
        uefi,
        tpm: hw.tpm,
        qemuBinary: this.opts.qemuBinary,
        // hardware options (issue 12): machine, disk bus, NIC model, boot order
        machine: hw.machine,
        diskBus: hw.diskBus,
        nicModel: hw.nicModel,
        bootOrder: hw.bootOrder,
        seed: seedFd === null ? null : { fd: seedFd }, // cloud-init (issue 12)
      });
      this.balloon.set(def.vmId, { process: null, memoryBytes: def.memoryMiB * 1024 * 1024 }); // metrics (issue 14)
      return { pid: r.pid, pidStart: r.pidStart, command: r.command, state: runStateOf(r.status) };
    } finally {
      if (fw) for (const fd of [fw.codeFd, fw.varsFd]) fs.closeSync(fd);
      if (seedFd !== null) fs.closeSync(seedFd);
    }
  }

  /** Where the VM keeps its UEFI variable store and TPM state (issue 12). */
  private stateDir(vmId: string): string {
    return path.join(this.opts.stateRoot ?? path.join(path.dirname(this.opts.runRoot), 'vms'), vmId);
  }

  stop(vmId: string): Promise<void> {
    return this.supervisor.stop(vmId);
  }

  powerdown(vmId: string): Promise<void> {
    return this.run(vmId, 'the power button', (c) => c.systemPowerdown());
  }

  reset(vmId: string): Promise<void> {
    return this.run(vmId, 'reset', (c) => c.systemReset());
  }

  pause(vmId: string): Promise<void> {
    return this.run(vmId, 'pause', (c) => c.stop());
  }

  resume(vmId: string): Promise<void> {
    return this.run(vmId, 'resume', (c) => c.cont());
  }

  async changeMedium(vmId: string, file: string): Promise<void> {
    const commands = this.commands(vmId);
    // The VM's unprivileged QEMU must be able to open it: lent by descriptor, its real path given.
    const real = this.supervisor.grantMedium(vmId, file);
    await this.call('the medium change', () => commands.blockdevChangeMedium(CD_DRIVE, real));
  }

  ejectMedium(vmId: string): Promise<void> {
    return this.run(vmId, 'eject', (c) => c.eject(CD_DRIVE));
  }

  process(vmId: string): RuntimeProcess | null {
    return this.supervisor.process(vmId);
  }

  async state(vmId: string): Promise<RunState> {
    const { status } = await this.call('the status query', () => this.commands(vmId).queryStatus());
    return runStateOf(status);
  }

  console(vmId: string): ConsoleEndpoint | null {
    if (!this.supervisor.process(vmId)) return null;
    const socket = this.supervisor.vncSocket(vmId);
    if (socket) return { path: socket };
    return { host: '127.0.0.1', port: 5900 + (this.supervisor.vncDisplay(vmId) ?? 0) };
  }

  // serial console (issue 14)
  serial(vmId: string): SerialChannel | null {
    return this.supervisor.serial(vmId);
  }

  serialLog(vmId: string, maxBytes: number): Buffer {
    return readSerialLogTail(runPaths(this.supervisor.runDir(vmId)).serialLog, maxBytes);
  }

  async blockJobs(vmId: string): Promise<BlockJob[]> {
    const jobs = await this.call('the block job query', () => this.commands(vmId).queryBlockJobs());
    return jobs.map((j) => ({ id: j.device, kind: j.type, done: j.offset, total: j.len, status: j.status }));
  }

  async stats(vmId: string): Promise<VmStats> {
    const stats = await this.call('the block statistics query', () => this.commands(vmId).queryBlockstats());
    return {
      disks: stats.map((s) => ({
        device: s.qdev ?? s.device,
        readBytes: s.stats.rd_bytes,
        writtenBytes: s.stats.wr_bytes,
        readOps: s.stats.rd_operations,
        writeOps: s.stats.wr_operations,
      })),
      nics: this.supervisor.nicStats(vmId), // networks (issue 11): tap NICs only
      ...(await this.guestMemory(vmId).then((m) => (m ? { guestMemory: m } : {}))),
    };
  }

  /**
   * Metrics (issue 14): the guest's memory from the balloon's statistics. The first call for a
   * process turns the guest's reports on; a VM without the device (started before it existed) or
   * a guest without the driver gives null, and is not asked again for that process.
   */
  private async guestMemory(vmId: string): Promise<GuestMemory | null> {
    const p = this.supervisor.process(vmId);
    if (!p) return null;
    const key = `${p.pid}:${p.pidStart}`;
    const b = this.balloon.get(vmId) ?? { process: null, memoryBytes: MAX_GUEST_MEMORY };
    if (b.process === `${key}:none`) return null;
    try {
      if (b.process !== key) {
        await this.commands(vmId).balloonStatsInterval(BALLOON_ID, BALLOON_POLL_SECONDS);
        this.balloon.set(vmId, { ...b, process: key });
      }
      return parseBalloonStats(await this.commands(vmId).balloonStats(BALLOON_ID), b.memoryBytes);
    } catch (err) {
      // no balloon device in this QEMU: stop asking it; anything else (busy, gone) is asked again
      if (err instanceof QmpCommandError) this.balloon.set(vmId, { ...b, process: `${key}:none` });
      return null;
    }
  }

  // metrics (issue 14)
  usage(vmId: string): ProcessUsage | null {
    const p = this.supervisor.process(vmId);
    return p ? readProcessUsage(p.pid, p.pidStart) : null;
  }

  /**
   * QEMU writes the frame into its own directory (run/<id>/qemu/, the VM user's), as that user; the
   * server opens it without following a link, checks it is a regular file within the bound, reads
   * it and removes it.
   */
  async screenshot(vmId: string): Promise<Buffer> {
    const commands = this.commands(vmId);
    const dir = runPaths(this.supervisor.runDir(vmId)).qemuDir;
    const file = path.join(dir, `screen-${crypto.randomUUID()}.png`);
    try {
      await this.call('the screenshot', () => commands.screendumpPng(file, SCREENSHOT_TIMEOUT_MS));
      return readBounded(file, SCREENSHOT_MAX_BYTES);
    } finally {
      try {
        fs.unlinkSync(file); // unlink never follows a link
      } catch {
        /* QEMU wrote nothing */
      }
    }
  }

  async adopt(
    vmId: string,
    recorded: { pid: number; pidStart: string | null } | null,
    nics?: readonly LaunchNic[],
  ): Promise<{ state: RunState; process: RuntimeProcess } | null> {
    const pid = recorded?.pid ?? readPid(runPaths(this.supervisor.runDir(vmId)).pidFile);
    if (pid === null) return null;
    let status: QmpRunState | null = null;
    try {
      status = await this.supervisor.adopt(vmId, pid, recorded?.pid === pid ? recorded.pidStart : null, nics);
    } catch (err) {
      this.opts.log.warn({ vmId, err: err instanceof Error ? err.message : String(err) }, 'could not adopt VM');
    }
    const process = this.supervisor.process(vmId);
    if (status === null || !process) return null;
    // QEMUs that ran before this server (even before its rules existed) come under them too.
    await this.opts.isolation.confineAdopted(this.supervisor.identity(vmId));
    return { state: runStateOf(status), process };
  }

  release(vmId: string): void {
    this.supervisor.releaseFiles(vmId);
  }

  /** Cloud-init (issue 12): the config is gone, so is its last seed. */
  discardSeed(vmId: string): void {
    removeSeed(this.stateDir(vmId));
  }

  discard(vmId: string): void {
    this.balloon.delete(vmId); // metrics (issue 14)
    fs.rmSync(this.supervisor.runDir(vmId), { recursive: true, force: true });
    fs.rmSync(this.stateDir(vmId), { recursive: true, force: true }); // UEFI vars and TPM state (issue 12)
  }

  subscribe(listener: (ev: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  detachAll(): void {
    this.supervisor.detachAll();
  }

  // --- snapshots (issue 10) ------------------------------------------------------------------

  async saveSnapshot(vmId: string, tag: string, opts: { disks: readonly number[]; memory: boolean }): Promise<void> {
    const c = this.commands(vmId);
    const nodes = snapshotNodes(opts.disks);
    if (!opts.memory) return this.call('the disk snapshot', () => c.snapshotDisksInternal(nodes, tag));
    await this.job('the snapshot', (id) => c.snapshotSave(id, tag, nodes[0]!, nodes, SNAPSHOT_JOB_TIMEOUT_MS));
  }

  async loadSnapshot(vmId: string, tag: string, opts: { disks: readonly number[] }): Promise<void> {
    const c = this.commands(vmId);
    const nodes = snapshotNodes(opts.disks);
    await this.job('the revert', (id) => c.snapshotLoad(id, tag, nodes[0]!, nodes, SNAPSHOT_JOB_TIMEOUT_MS));
  }

  async deleteSnapshot(vmId: string, tag: string, opts: { disks: readonly number[] }): Promise<void> {
    const c = this.commands(vmId);
    const nodes = snapshotNodes(opts.disks);
    await this.job('the snapshot deletion', (id) => c.snapshotDelete(id, tag, nodes, SNAPSHOT_JOB_TIMEOUT_MS));
  }

  /** Runs a QMP job to its end; the job's own failure is QEMU_ERROR with QEMU's words. */
  private async job(what: string, run: (jobId: string) => Promise<string | null>): Promise<void> {
    const error = await this.call(what, () => run(`qm-${crypto.randomUUID()}`));
    if (error !== null) throw new AppError('QEMU_ERROR', `QEMU could not complete ${what}: ${error}`);
  }

  // disk resize (issue 10)
  async resizeDisk(vmId: string, diskIndex: number, bytes: number): Promise<void> {
    const commands = this.commands(vmId);
    // The node names of argv.ts: disk<i> for the i-th disk of the definition QEMU was started with.
    const node = `disk${diskIndex}`;
    const blocks = await this.call('the block device query', () => commands.queryBlock());
    const current = blocks.find((b) => b.inserted?.['node-name'] === node)?.inserted?.image?.['virtual-size'];
    if (current === undefined) throw new AppError('QEMU_ERROR', `The running VM has no disk ${diskIndex + 1} (node ${node})`);
    if (bytes < current) throw new AppError('DISK_CANNOT_SHRINK', `The running VM's disk ${diskIndex + 1} is already ${current} bytes; a resize only grows a disk`);
    if (bytes === current) return;
    await this.call('the disk resize', () => commands.blockResize(node, bytes));
  }

  // --- networks (issue 11) -------------------------------------------------------------------

  attachNic(vmId: string, nic: LaunchNic): Promise<void> {
    return this.supervisor.attachNic(vmId, nic);
  }

  detachNic(vmId: string, slot: number): Promise<void> {
    return this.supervisor.detachNic(vmId, slot);
  }

  /** HMP hostfwd_add on the user-mode netdev of `slot`; QEMU that cannot listen there: PORT_IN_USE. */
  async addUserForward(vmId: string, slot: number, fwd: UserForward): Promise<void> {
    const { commands, nic } = this.userNic(vmId, slot);
    const rule = ruleOf(() => hostfwdRule(fwd));
    const error = await this.call('the port forward', () => commands.hostfwdAdd(`net${slot}`, rule));
    if (error !== null) {
      if (/Could not set up host forwarding rule/i.test(error)) throw new AppError('PORT_IN_USE', `QEMU cannot listen on ${fwd.hostAddress}:${fwd.hostPort}: ${error}`);
      throw new AppError('QEMU_ERROR', `QEMU refused the port forward: ${error}`);
    }
    this.supervisor.updateNic(vmId, { ...nic, forwards: [...nic.forwards, fwd] });
  }

  /** HMP hostfwd_remove by the forward's host side; the port closes. */
  async removeUserForward(vmId: string, slot: number, fwd: UserForward): Promise<void> {
    const { commands, nic } = this.userNic(vmId, slot);
    const hostSide = ruleOf(() => hostfwdHostSide(fwd));
    const error = await this.call('the port forward removal', () => commands.hostfwdRemove(`net${slot}`, hostSide));
    if (error !== null) throw new AppError('QEMU_ERROR', `QEMU could not remove the port forward ${hostSide}: ${error}`);
    const same = (f: UserForward) => f.protocol === fwd.protocol && f.hostAddress === fwd.hostAddress && f.hostPort === fwd.hostPort;
    this.supervisor.updateNic(vmId, { ...nic, forwards: nic.forwards.filter((f) => !same(f)) });
  }

  /** The running VM's user-mode NIC of `slot` and its commands. */
  private userNic(vmId: string, slot: number): { commands: QmpCommands; nic: LaunchNic & { kind: 'user' } } {
    const commands = this.commands(vmId);
    const nic = this.supervisor.nics(vmId)?.find((n) => n.slot === slot);
    if (!nic) throw new AppError('QEMU_ERROR', `The running VM has no NIC in slot ${slot}`);
    if (nic.kind !== 'user') throw new AppError('FORWARD_UNSUPPORTED', `NIC ${slot} is not a user-mode NIC; QEMU forwards ports only for those`);
    return { commands, nic };
  }

  // --- helpers -----------------------------------------------------------------------------

  private emit(ev: RuntimeEvent): void {
    for (const l of this.listeners) l(ev);
  }

  private onQmpEvent(vmId: string, ev: QmpEvent): void {
    const type = stateEventOf(ev.event);
    if (type) {
      this.emit({ vmId, type });
      // alerts (issue 14): a SIGTERM/SIGINT from outside the server is not a stop anybody asked for
      if (ev.event === 'SHUTDOWN' && ev.data?.reason === 'host-signal') this.emit({ vmId, type: 'killed' });
      return;
    }
    if (JOB_EVENTS.has(ev.event)) {
      const d = ev.data ?? {};
      const num = (v: unknown) => (typeof v === 'number' ? v : 0);
      const str = (v: unknown, dflt: string) => (typeof v === 'string' ? v : dflt);
      const status = ev.event === 'BLOCK_JOB_READY' ? 'ready' : ev.event === 'BLOCK_JOB_ERROR' ? 'error' : 'concluded';
      this.emit({ vmId, type: 'job', job: { id: str(d.device, '?'), kind: str(d.type, '?'), done: num(d.offset), total: num(d.len), status } });
    }
  }

  // --- the guest agent (issue 14) ---------------------------------------------------------

  agentStatus(vmId: string): GuestAgentStatus {
    const a = this.supervisor.agent(vmId);
    return { connected: a?.connected ?? false, lastSeen: a?.lastSeen?.toISOString() ?? null };
  }

  agentInfo(vmId: string): Promise<GuestAgentInfo> {
    return this.viaAgent(vmId, 'read the guest', (a) => a.info());
  }

  agentShutdown(vmId: string): Promise<void> {
    return this.viaAgent(vmId, 'shut the guest down', (a) => a.shutdown());
  }

  agentFreeze(vmId: string): Promise<number> {
    return this.viaAgent(vmId, 'freeze the guest\'s file systems', (a) => a.freeze());
  }

  agentThaw(vmId: string): Promise<number> {
    return this.viaAgent(vmId, 'thaw the guest\'s file systems', (a) => a.thaw());
  }

  private async viaAgent<T>(vmId: string, what: string, fn: (a: AgentSession) => Promise<T>): Promise<T> {
    const a = this.supervisor.agent(vmId);
    if (!a) throw new AppError('VM_NOT_RUNNING', 'VM is not running');
    try {
      return await fn(a);
    } catch (err) {
      if (err instanceof AgentCommandError) throw new AppError('AGENT_UNAVAILABLE', `The guest agent could not ${what}: ${err.message}`);
      throw new AppError('AGENT_UNAVAILABLE', `The guest agent does not answer (${(err as Error).message})`);
    }
  }

  /** The commands of the VM's live QEMU; VM_NOT_RUNNING without one. */
  private commands(vmId: string): QmpCommands {
    const c = this.supervisor.commands(vmId);
    if (!c) throw new AppError('VM_NOT_RUNNING', 'VM is not running');
    return c;
  }

  private run(vmId: string, what: string, fn: (c: QmpCommands) => Promise<void>): Promise<void> {
    return this.call(what, () => fn(this.commands(vmId)));
  }

  /** Runs a QMP call; QEMU's refusal is QEMU_ERROR, no answer QEMU_UNREACHABLE. */
  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return qmpCall(what, fn);
  }

  // --- backups: engine (issue 13): qemu/backup-job.ts -----------------------------------------

  backupDisks(vmId: string): Promise<BackupDiskState[]> {
    const c = this.commands(vmId);
    return this.call('the block node query', () => backupDiskStates(c));
  }

  async backup(vmId: string, job: LiveBackup): Promise<void> {
    const commands = this.commands(vmId);
    const nbdBinary = path.isAbsolute(this.opts.qemuBinary) ? path.join(path.dirname(this.opts.qemuBinary), 'qemu-nbd') : 'qemu-nbd';
    await runLiveBackup({ commands, runDir: this.supervisor.runDir(vmId), identity: this.supervisor.identity(vmId), nbdBinary, log: this.opts.log }, job);
  }

  async removeBitmaps(vmId: string, bitmaps: ReadonlyArray<{ index: number; name: string }>): Promise<void> {
    const c = this.commands(vmId);
    const present = await this.backupDisks(vmId);
    for (const b of bitmaps) {
      if (!present.find((d) => d.index === b.index)?.bitmaps.some((x) => x.name === b.name)) continue;
      await this.call('the bitmap removal', () => c.blockDirtyBitmapRemove(`disk${b.index}`, b.name));
    }
  }

  recoverBackups(vmId: string): Promise<number> {
    const c = this.commands(vmId);
    return this.call('the backup job recovery', () => recoverLiveBackups(c, this.supervisor.runDir(vmId), this.opts.log));
  }
}

// networks (issue 11)
/** A forward argv.ts refuses (bad address or port) is a VALIDATION error. */
function ruleOf(fn: () => string): string {
  try {
    return fn();
  } catch (err) {
    throw new AppError('VALIDATION', (err as Error).message);
  }
}

// metrics (issue 14)
const SCREENSHOT_TIMEOUT_MS = 5000;
/** An uncompressed 4096×4096 RGB frame is 48 MiB; QEMU's PNG of any real screen is far smaller. */
const SCREENSHOT_MAX_BYTES = 16 * 1024 * 1024;

/** A file the VM's user wrote: a regular file of at most `max` bytes, opened without following a link. */
function readBounded(file: string, max: number): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new AppError('QEMU_ERROR', 'QEMU did not write a screenshot file');
    if (st.size > max) throw new AppError('QEMU_ERROR', `The screenshot is larger than ${max} bytes`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

// snapshots (issue 10)
/** How long a snapshot job may take (saving the RAM of a big guest to a slow disk takes a while). */
const SNAPSHOT_JOB_TIMEOUT_MS = 10 * 60_000;

/** The block node of each disk index: the format node argv.ts names `disk<i>` (-blockdev node-name). */
function snapshotNodes(disks: readonly number[]): string[] {
  if (disks.length === 0) throw new AppError('VALIDATION', 'A snapshot needs at least one disk');
  return disks.map((i) => `disk${i}`);
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
