/**
 * A fake hypervisor for the in-process test tier: it implements the runtime port (VmRuntime) and
 * the image tool (ImageTool) the way the QEMU adapter behaves, without any process, QMP socket,
 * qemu-img, nftables or system user. Tests steer it: make the next call of a method fail, hold a
 * call until released, choose what the ACPI button does, or emit events as QEMU would.
 */
import type { DiskFormat, DiskInfo } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../../packages/server/src/lib/errors.js';
import type {
  BackupDiskState,
  LiveBackup,
  BlockJob,
  ConsoleEndpoint,
  ImageSnapshot,
  ImageTool,
  Launched,
  RunState,
  RuntimeEvent,
  RuntimeProcess,
  VmLaunch,
  VmRuntime,
  VmStats,
  LaunchNic,
  UserForward,
  GuestAgentInfo,
  GuestAgentStatus,
  ProcessUsage,
} from '../../packages/server/src/runtime/port.js';
import { encodePng } from '../../packages/server/src/lib/png.js'; // metrics (issue 14)
import { FakeSerialPort } from './fake-serial.js'; // serial console (issue 14)

/** A call held until the test releases it. `reached` resolves once the call is waiting. */
export interface Gate {
  reached: Promise<void>;
  release(): void;
}

function makeGate(): Gate & { wait(): Promise<void> } {
  let markReached!: () => void;
  let open!: () => void;
  const reached = new Promise<void>((r) => (markReached = r));
  const opened = new Promise<void>((r) => (open = r));
  return {
    reached,
    release: () => open(),
    wait: () => {
      markReached();
      return opened;
    },
  };
}

/** Steering shared by both fakes: one-shot failures and held calls, per method name. */
class Controls<M extends string> {
  private readonly failures = new Map<M, unknown[]>();
  private readonly gates = new Map<M, Array<ReturnType<typeof makeGate>>>();
  /** Every call, in order (method and first argument). */
  readonly calls: Array<{ method: M; arg: string }> = [];

  /** The next call of `method` throws `err` (once per call to failNext). */
  failNext(method: M, err: unknown): void {
    const list = this.failures.get(method) ?? [];
    list.push(err);
    this.failures.set(method, list);
  }

  /** The next call of `method` waits until the returned gate is released. */
  hold(method: M): Gate {
    const g = makeGate();
    const list = this.gates.get(method) ?? [];
    list.push(g);
    this.gates.set(method, list);
    return g;
  }

  count(method: M): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  /** Records the call, waits at a gate if one is set, then throws a queued failure if any. */
  async enter(method: M, arg: string): Promise<void> {
    this.calls.push({ method, arg });
    await this.pass(method);
  }

  /** Waits at the method's gate if one is set, then throws its queued failure if any. */
  async pass(method: M): Promise<void> {
    const gate = this.gates.get(method)?.shift();
    if (gate) await gate.wait();
    const failures = this.failures.get(method);
    if (failures?.length) throw failures.shift();
  }
}

type RuntimeMethod =
  | 'start' | 'stop' | 'powerdown' | 'reset' | 'pause' | 'resume' | 'changeMedium' | 'ejectMedium' | 'state' | 'blockJobs' | 'stats' | 'adopt'
  // snapshots (issue 10)
  | 'saveSnapshot' | 'loadSnapshot' | 'deleteSnapshot'
  // disk resize (issue 10)
  | 'resizeDisk'
  // backups: engine (issue 13)
  | 'backupDisks' | 'backup' | 'removeBitmaps' | 'recoverBackups'
  // metrics (issue 14)
  | 'screenshot'
  // networks (issue 11)
  | 'attachNic' | 'detachNic' | 'addUserForward' | 'removeUserForward';

interface FakeVm extends RuntimeProcess {
  state: RunState;
  medium: string | null;
}

/** Fake pids far above any real pid_max, so nothing a test does can reach a real process. */
let nextPid = 90_000_000;

export class FakeRuntime extends Controls<RuntimeMethod> implements VmRuntime {
  private readonly vms = new Map<string, FakeVm>();
  private readonly listeners = new Set<(ev: RuntimeEvent) => void>();
  /** What the ACPI button does: the guest powers off (shutdown, then exited), or nothing happens. */
  powerdownEffect: 'exit' | 'ignore' = 'exit';
  /** VMs that "kept running" across a server restart: adopt() finds them. */
  readonly survivors = new Map<string, { state: RunState; process: RuntimeProcess }>();
  /** The definitions start() was given, newest last (each disk with the file its descriptor names). */
  readonly launches: Array<VmLaunch & { disks: Array<VmLaunch['disks'][number] & { file: string | null }> }> = [];
  readonly released: string[] = [];
  readonly discarded: string[] = [];
  detached = 0;
  /** Metrics (issue 14): what usage() and stats() report for a VM (tests set them; none: zeros). */
  readonly counters = new Map<string, { cpuSeconds: number; rssBytes: number; disks: VmStats['disks'] }>();
  /** Metrics (issue 14): the PNG screenshot() gives (null: a tiny grey one). */
  screenPng: Buffer | null = null;

  constructor(private readonly runRoot: string) {
    super();
  }

  async start(def: VmLaunch): Promise<Launched> {
    this.launches.push({ ...def, disks: def.disks.map((d) => ({ layers: [...d.layers], file: fdPath(d.layers[0]?.fd) })) });
    await this.enter('start', def.vmId);
    if (this.vms.has(def.vmId)) throw new AppError('QEMU_START_FAILED', `QEMU failed to start: VM ${def.vmId} already runs`);
    const vm: FakeVm = { pid: nextPid++, pidStart: String(Date.now()), state: 'running', medium: null };
    this.vms.set(def.vmId, vm);
    const command = ['qemu-system-x86_64', '-name', def.name, '-uuid', def.vmId, '-smp', String(def.cpus), '-m', String(def.memoryMiB)].join(' ');
    return { pid: vm.pid, pidStart: vm.pidStart, command, state: 'running' };
  }

  async stop(vmId: string): Promise<void> {
    await this.enter('stop', vmId);
    if (!this.vms.has(vmId)) return;
    this.exit(vmId);
  }

  async powerdown(vmId: string): Promise<void> {
    this.live(vmId);
    await this.enter('powerdown', vmId);
    if (this.powerdownEffect === 'ignore') return;
    // The guest reacts a moment later, as a real one does: SHUTDOWN, then the process exits.
    setImmediate(() => {
      if (!this.vms.has(vmId)) return;
      this.emit({ vmId, type: 'shutdown' });
      this.exit(vmId);
    });
  }

  async reset(vmId: string): Promise<void> {
    this.live(vmId);
    await this.enter('reset', vmId);
    this.emit({ vmId, type: 'reset' });
  }

  async pause(vmId: string): Promise<void> {
    const vm = this.live(vmId);
    await this.enter('pause', vmId);
    vm.state = 'paused';
    this.emit({ vmId, type: 'paused' });
  }

  async resume(vmId: string): Promise<void> {
    const vm = this.live(vmId);
    await this.enter('resume', vmId);
    vm.state = 'running';
    this.emit({ vmId, type: 'resumed' });
  }

  async changeMedium(vmId: string, file: string): Promise<void> {
    const vm = this.live(vmId);
    await this.enter('changeMedium', vmId);
    vm.medium = file;
  }

  async ejectMedium(vmId: string): Promise<void> {
    const vm = this.live(vmId);
    await this.enter('ejectMedium', vmId);
    vm.medium = null;
  }

  process(vmId: string): RuntimeProcess | null {
    const vm = this.vms.get(vmId);
    return vm ? { pid: vm.pid, pidStart: vm.pidStart } : null;
  }

  async state(vmId: string): Promise<RunState> {
    const vm = this.live(vmId);
    await this.enter('state', vmId);
    return vm.state;
  }

  // serial console (issue 14): one port per running VM; `serialLogs` is what serialLog() reads
  readonly serialPorts = new Map<string, FakeSerialPort>();
  readonly serialLogs = new Map<string, string>();

  serial(vmId: string): FakeSerialPort | null {
    const port = this.serialPorts.get(vmId);
    if (!this.vms.has(vmId)) {
      port?.end();
      this.serialPorts.delete(vmId);
      return null;
    }
    if (port) return port;
    const made = new FakeSerialPort();
    this.serialPorts.set(vmId, made);
    return made;
  }

  serialLog(vmId: string, maxBytes: number): Buffer {
    return Buffer.from(this.serialLogs.get(vmId) ?? '').subarray(-maxBytes);
  }

  console(vmId: string): ConsoleEndpoint | null {
    return this.vms.has(vmId) ? { path: path.join(this.runRoot, vmId, 'vnc.sock') } : null;
  }

  async blockJobs(vmId: string): Promise<BlockJob[]> {
    this.live(vmId);
    await this.enter('blockJobs', vmId);
    return [];
  }

  async stats(vmId: string): Promise<VmStats> {
    this.live(vmId);
    await this.enter('stats', vmId);
    return { disks: this.counters.get(vmId)?.disks ?? [] };
  }

  // metrics (issue 14)
  usage(vmId: string): ProcessUsage | null {
    if (!this.vms.has(vmId)) return null;
    const c = this.counters.get(vmId);
    return { cpuSeconds: c?.cpuSeconds ?? 0, rssBytes: c?.rssBytes ?? 0 };
  }

  async screenshot(vmId: string): Promise<Buffer> {
    this.live(vmId);
    await this.enter('screenshot', vmId);
    return this.screenPng ?? encodePng({ width: 4, height: 2, data: Buffer.alloc(24, 0x80) });
  }

  async adopt(vmId: string): Promise<{ state: RunState; process: RuntimeProcess } | null> {
    await this.enter('adopt', vmId);
    const found = this.survivors.get(vmId);
    if (!found) return null;
    this.vms.set(vmId, { ...found.process, state: found.state, medium: null });
    return found;
  }

  release(vmId: string): void {
    this.released.push(vmId);
  }

  discard(vmId: string): void {
    this.discarded.push(vmId);
  }

  subscribe(listener: (ev: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  detachAll(): void {
    this.detached++;
    this.vms.clear();
  }

  // disk resize (issue 10)
  /** Every live resize, in order: the VM, the disk's place in its definition, the new size. */
  readonly resizes: Array<{ vmId: string; diskIndex: number; bytes: number }> = [];

  async resizeDisk(vmId: string, diskIndex: number, bytes: number): Promise<void> {
    this.live(vmId);
    await this.enter('resizeDisk', vmId);
    this.resizes.push({ vmId, diskIndex, bytes });
  }

  // --- for tests ---------------------------------------------------------------------------

  /** Reports an event as QEMU would (STOP, RESUME, SHUTDOWN, ...). */
  emit(ev: RuntimeEvent): void {
    for (const l of this.listeners) l(ev);
  }

  /** The VM's process ends (a guest power-off, a crash, a kill): `exited` is reported. */
  exit(vmId: string): void {
    if (!this.vms.delete(vmId)) return;
    this.liveNics.delete(vmId); // networks (issue 11)
    this.emit({ vmId, type: 'exited' });
  }

  running(vmId: string): boolean {
    return this.vms.has(vmId);
  }

  medium(vmId: string): string | null {
    return this.vms.get(vmId)?.medium ?? null;
  }

  // --- snapshots (issue 10): live snapshots land in the shared image table of the fake images ---

  /** Where live snapshots go: the fake image tool's table (a suite sets it: `s.runtime.images = s.images`). */
  images: FakeImages | null = null;

  async saveSnapshot(vmId: string, tag: string, opts: { disks: readonly number[]; memory: boolean }): Promise<void> {
    this.live(vmId);
    await this.enter('saveSnapshot', vmId);
    const files = this.diskFiles(vmId, opts.disks);
    files.forEach((f, i) => this.images?.addSnapshot(f, { name: tag, vmStateBytes: opts.memory && i === 0 ? 4096 : 0, date: new Date().toISOString() }));
  }

  async loadSnapshot(vmId: string, tag: string, opts: { disks: readonly number[] }): Promise<void> {
    this.live(vmId);
    await this.enter('loadSnapshot', vmId);
    for (const f of this.diskFiles(vmId, opts.disks)) {
      if (!this.images?.hasSnapshot(f, tag)) throw new AppError('QEMU_ERROR', `QEMU could not complete the revert: Snapshot '${tag}' does not exist in ${f}`);
    }
  }

  async deleteSnapshot(vmId: string, tag: string, opts: { disks: readonly number[] }): Promise<void> {
    this.live(vmId);
    await this.enter('deleteSnapshot', vmId);
    for (const f of this.diskFiles(vmId, opts.disks)) this.images?.dropSnapshot(f, tag);
  }

  /** The image files of a running VM's disks (by launch index), read back from its descriptors. */
  private diskFiles(vmId: string, disks: readonly number[]): string[] {
    const def = this.launches.filter((l) => l.vmId === vmId).at(-1);
    return disks.map((i) => def?.disks[i]?.file ?? `disk${i}`);
  }

  // --- backups: engine (issue 13): dirty bitmaps per VM and disk index; backup writes a byte ---

  /** The bitmaps of each running VM's disks: `vmId` → disk index → name → consistent. */
  readonly bitmaps = new Map<string, Map<number, Map<string, boolean>>>();
  /** Every live backup: the VM and what each disk was asked (bitmap copied by, new bitmap). */
  readonly backups: Array<{ vmId: string; disks: LiveBackup['disks'] }> = [];
  /** Backup jobs `recoverBackups` finds (set by a test as a crashed server would leave them). */
  leftJobs = new Map<string, number>();

  async backupDisks(vmId: string): Promise<BackupDiskState[]> {
    this.live(vmId);
    await this.enter('backupDisks', vmId);
    const def = this.launches.filter((l) => l.vmId === vmId).at(-1);
    return (def?.disks ?? []).map((_d, index) => ({
      index,
      virtualSize: GiB,
      bitmaps: [...(this.bitmaps.get(vmId)?.get(index) ?? new Map<string, boolean>())].map(([name, consistent]) => ({ name, persistent: true, consistent })),
    }));
  }

  async backup(vmId: string, job: LiveBackup): Promise<void> {
    this.live(vmId);
    const disks = this.bitmaps.get(vmId) ?? new Map<number, Map<string, boolean>>();
    this.bitmaps.set(vmId, disks);
    for (const d of job.disks) {
      if (d.bitmap && !disks.get(d.index)?.has(d.bitmap)) throw new AppError('QEMU_ERROR', `QEMU refused the backup: Dirty bitmap '${d.bitmap}' not found`);
      if (d.newBitmap) disks.set(d.index, (disks.get(d.index) ?? new Map<string, boolean>()).set(d.newBitmap, true));
    }
    await job.pointInTime?.before(); // fsfreeze (issue 14): right before the jobs start …
    this.backups.push({ vmId, disks: job.disks });
    await job.pointInTime?.after(); // … and the thaw right after
    job.progress(0, GiB * job.disks.length);
    const killed = new Promise<never>((_resolve, reject) => job.signal.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
    await Promise.race([this.enter('backup', vmId), killed]);
    for (const d of job.disks) fs.appendFileSync(d.file, Buffer.from('data'));
    job.progress(GiB * job.disks.length, GiB * job.disks.length);
  }

  async removeBitmaps(vmId: string, bitmaps: ReadonlyArray<{ index: number; name: string }>): Promise<void> {
    this.live(vmId);
    await this.enter('removeBitmaps', vmId);
    for (const b of bitmaps) this.bitmaps.get(vmId)?.get(b.index)?.delete(b.name);
  }

  async recoverBackups(vmId: string): Promise<number> {
    this.live(vmId);
    await this.enter('recoverBackups', vmId);
    const n = this.leftJobs.get(vmId) ?? 0;
    this.leftJobs.delete(vmId);
    return n;
  }

  // the guest agent (issue 14): a test sets what a VM's agent says (absent: it does not answer)
  readonly agents = new Map<string, GuestAgentInfo>();
  readonly agentCalls: string[] = [];

  agentStatus(vmId: string): GuestAgentStatus {
    const on = this.vms.has(vmId) && this.agents.has(vmId);
    return { connected: on, lastSeen: on ? new Date().toISOString() : null };
  }

  async agentInfo(vmId: string): Promise<GuestAgentInfo> {
    return this.agent(vmId, 'info');
  }

  async agentShutdown(vmId: string): Promise<void> {
    this.agent(vmId, 'shutdown');
    setImmediate(() => {
      if (!this.vms.has(vmId)) return;
      this.emit({ vmId, type: 'shutdown' });
      this.exit(vmId);
    });
  }

  async agentFreeze(vmId: string): Promise<number> {
    this.agent(vmId, 'freeze');
    return 1;
  }

  async agentThaw(vmId: string): Promise<number> {
    this.agent(vmId, 'thaw');
    return 1;
  }

  private agent(vmId: string, call: string): GuestAgentInfo {
    this.live(vmId);
    const info = this.agents.get(vmId);
    if (!info) throw new AppError('AGENT_UNAVAILABLE', 'The guest agent does not answer');
    this.agentCalls.push(`${call} ${vmId}`);
    return info;
  }

  // networks (issue 11): the NICs of each running VM (those it started with, plus hot-plugged), by slot
  readonly liveNics = new Map<string, Map<number, LaunchNic>>();

  /** The NICs a running VM has now (its launch's, changed by hot-plug); forgotten at a stop. */
  nicsOf(vmId: string): Map<number, LaunchNic> {
    let m = this.liveNics.get(vmId);
    if (!m || !this.vms.has(vmId)) {
      const def = this.launches.filter((l) => l.vmId === vmId).at(-1);
      m = new Map((def?.nics ?? []).map((n) => [n.slot, n.kind === 'user' ? { ...n, forwards: [...n.forwards] } : { ...n }]));
      this.liveNics.set(vmId, m);
    }
    return m;
  }

  async attachNic(vmId: string, nic: LaunchNic): Promise<void> {
    this.live(vmId);
    await this.enter('attachNic', vmId);
    const m = this.nicsOf(vmId);
    if (m.has(nic.slot)) throw new AppError('QEMU_ERROR', `QEMU refused the NIC: Duplicate ID 'nic${nic.slot}' for device`);
    m.set(nic.slot, nic);
  }

  async detachNic(vmId: string, slot: number): Promise<void> {
    this.live(vmId);
    await this.enter('detachNic', vmId);
    if (!this.nicsOf(vmId).delete(slot)) throw new AppError('QEMU_ERROR', `QEMU refused: Device 'nic${slot}' not found`);
  }

  async addUserForward(vmId: string, slot: number, fwd: UserForward): Promise<void> {
    this.live(vmId);
    await this.enter('addUserForward', vmId);
    const nic = this.nicsOf(vmId).get(slot);
    if (!nic || nic.kind !== 'user') throw new AppError('QEMU_ERROR', `QEMU refused: no user-mode netdev net${slot}`);
    (nic.forwards as UserForward[]).push(fwd);
  }

  async removeUserForward(vmId: string, slot: number, fwd: UserForward): Promise<void> {
    this.live(vmId);
    await this.enter('removeUserForward', vmId);
    const nic = this.nicsOf(vmId).get(slot);
    if (nic?.kind !== 'user') return;
    const list = nic.forwards as UserForward[];
    const i = list.findIndex((f) => f.protocol === fwd.protocol && f.hostPort === fwd.hostPort);
    if (i >= 0) list.splice(i, 1);
  }

  /** As the QEMU adapter: a command to a VM that does not run is VM_NOT_RUNNING. */
  private live(vmId: string): FakeVm {
    const vm = this.vms.get(vmId);
    if (!vm) throw new AppError('VM_NOT_RUNNING', 'VM is not running');
    return vm;
  }
}

const GiB = 1024 * 1024 * 1024;

/** A minimal, valid image header of each format (what the server's own image checks read). */
function imageHeader(format: DiskFormat, sizeGb: number): Buffer {
  const size = BigInt(sizeGb) * BigInt(GiB);
  if (format === 'qcow2') {
    const b = Buffer.alloc(64 * 1024);
    b.writeUInt32BE(0x514649fb, 0); // magic
    b.writeUInt32BE(3, 4); // version
    b.writeUInt32BE(16, 20); // cluster bits: 64 KiB
    b.writeBigUInt64BE(size, 24);
    b.writeUInt32BE(104, 100); // header length; the extension area that follows starts with "end"
    return b;
  }
  if (format === 'vmdk') {
    const b = Buffer.alloc(0x200 + 20 * 512);
    b.writeUInt32BE(0x4b444d56, 0); // KDMV
    b.writeBigUInt64LE(size / 512n, 12); // capacity in sectors
    b.writeBigUInt64LE(1n, 56); // grain directory offset (not at the end)
    return b;
  }
  return Buffer.alloc(4096);
}

/** The file an open descriptor names (what the fake runtime keeps of a launched disk). */
function fdPath(fd: number | undefined): string | null {
  if (fd === undefined) return null;
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

export class FakeImages extends Controls<'create' | 'info' | 'snapshots' | 'snapshot' | 'resize' | 'overlay' | 'copy' | 'check' | 'flatten' | 'rebase' | 'backupTarget'> implements ImageTool {
  /** The virtual size each created image was given, by file. */
  private readonly sizes = new Map<string, number>();

  /**
   * Writes a real small image at `file` (the disk service renames it into place afterwards), then,
   * like a qemu-img still at work, waits at a gate if one is set; a queued failure comes after the
   * file was written, as a qemu-img that fails half-way leaves one.
   */
  async create(file: string, format: DiskFormat, sizeGb: number, signal?: AbortSignal): Promise<void> {
    this.calls.push({ method: 'create', arg: file });
    fs.writeFileSync(file, imageHeader(format, sizeGb), { flag: 'wx', mode: 0o600 });
    this.sizes.set(file, sizeGb * GiB);
    // Like a qemu-img killed by the cancel: the wait ends with a failure.
    const killed = new Promise<never>((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
    await Promise.race([this.pass('create'), killed]);
  }

  async info(file: string, format: DiskFormat): Promise<DiskInfo> {
    await this.enter('info', file);
    const st = fs.statSync(file);
    const virtual = this.sizes.get(file) ?? this.sizes.get(`${file}.part`) ?? st.size;
    return { 'virtual-size': virtual, filename: file, format, 'actual-size': st.blocks * 512, 'dirty-flag': false };
  }

  // --- snapshots (issue 10): a table of internal snapshots per image file ---------------------

  /** Internal snapshots by image file (the real path), oldest first. */
  readonly snapshotTable = new Map<string, ImageSnapshot[]>();
  /** Image files reverted, with the tag: `file@tag`, in order. */
  readonly applied: string[] = [];

  async snapshots(file: string, _format: DiskFormat): Promise<ImageSnapshot[]> {
    await this.enter('snapshots', file);
    if (!fs.existsSync(file)) throw new AppError('FILE_NOT_FOUND', `disk file not found: ${file}`);
    return [...(this.snapshotTable.get(fs.realpathSync(file)) ?? [])];
  }

  async snapshot(file: string, format: DiskFormat, op: 'create' | 'apply' | 'delete', tag: string): Promise<void> {
    await this.enter('snapshot', `${op} ${tag} ${file}`);
    if (format !== 'qcow2') throw new AppError('SNAPSHOT_UNSUPPORTED', `${file} is a ${format} image`);
    const real = fs.realpathSync(file);
    if (op === 'create') this.addSnapshot(real, { name: tag, vmStateBytes: 0, date: new Date().toISOString() });
    else if (!this.hasSnapshot(real, tag)) throw new AppError('QEMU_ERROR', `qemu-img could not ${op} the snapshot ${tag} of ${real}`);
    else if (op === 'apply') this.applied.push(`${real}@${tag}`);
    else this.dropSnapshot(real, tag);
  }

  // disk resize (issue 10)
  /** Like qemu-img resize without --shrink: grows the recorded virtual size, refuses a smaller one. */
  async resize(file: string, _format: DiskFormat, sizeGb: number, signal?: AbortSignal): Promise<void> {
    this.calls.push({ method: 'resize', arg: file });
    const killed = new Promise<never>((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
    await Promise.race([this.pass('resize'), killed]);
    const current = this.sizes.get(file) ?? this.sizes.get(`${file}.part`) ?? fs.statSync(file).size;
    if (sizeGb * GiB < current) throw new AppError('DISK_CANNOT_SHRINK', `${file} is already larger than ${sizeGb} GB; it was not resized`);
    this.sizes.set(file, sizeGb * GiB);
  }

  addSnapshot(file: string, sn: ImageSnapshot): void {
    this.snapshotTable.set(file, [...(this.snapshotTable.get(file) ?? []), sn]);
  }

  hasSnapshot(file: string, tag: string): boolean {
    return (this.snapshotTable.get(file) ?? []).some((s) => s.name === tag);
  }

  dropSnapshot(file: string, tag: string): void {
    this.snapshotTable.set(file, (this.snapshotTable.get(file) ?? []).filter((s) => s.name !== tag));
  }

  // --- clones and backing chains (issue 10) ---

  /** A real qcow2 header naming `backing` (absolute path, its format recorded), as qemu-img -u writes. */
  async overlay(file: string, backing: { file: string; format: DiskFormat }, signal?: AbortSignal): Promise<void> {
    await this.enter('overlay', file);
    if (signal?.aborted) throw new Error('killed');
    const real = fs.realpathSync(backing.file);
    const size = this.sizes.get(real) ?? this.sizes.get(`${real}.part`) ?? fs.statSync(real).size;
    const b = imageHeader('qcow2', 1);
    b.writeBigUInt64BE(BigInt(size), 24);
    const name = Buffer.from(real);
    const fmt = Buffer.from(backing.format);
    b.writeUInt32BE(0xe2792aca, 104); // backing format extension
    b.writeUInt32BE(fmt.length, 108);
    fmt.copy(b, 112);
    // then the end extension (zeros), and the name in the first cluster
    b.writeBigUInt64BE(1024n, 8);
    b.writeUInt32BE(name.length, 16);
    name.copy(b, 1024);
    fs.writeFileSync(file, b, { flag: 'wx', mode: 0o600 });
    this.sizes.set(file, size);
  }

  /** Copies the file's bytes, reporting progress half-way and at the end; a gate holds it half-way. */
  async copy(
    source: { file: string; format: DiskFormat },
    target: string,
    opts: { signal?: AbortSignal; progress?: (done: number, total: number) => void; format?: DiskFormat } = {},
  ): Promise<void> {
    this.calls.push({ method: 'copy', arg: source.file });
    const real = fs.realpathSync(source.file);
    const total = this.sizes.get(real) ?? this.sizes.get(`${real}.part`) ?? fs.statSync(real).size;
    // import and convert (issue 10): into another format, a fresh header of that format and size.
    if (opts.format && opts.format !== source.format) fs.writeFileSync(target, imageHeader(opts.format, Math.max(1, Math.ceil(total / GiB))), { flag: 'wx', mode: 0o600 });
    else fs.copyFileSync(real, target, fs.constants.COPYFILE_EXCL);
    opts.progress?.(Math.floor(total / 2), total);
    const killed = new Promise<never>((_resolve, reject) => opts.signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
    await Promise.race([this.pass('copy'), killed]);
    this.sizes.set(target, total);
    opts.progress?.(total, total);
  }

  // --- backups: restore, verify, delete, import (issue 13) ---
  /** Files (real paths) the fake check reports as corrupt. */
  readonly corrupt = new Set<string>();

  async check(file: string, _format: DiskFormat, _opts: { root: string }): Promise<{ ok: boolean; message: string }> {
    await this.enter('check', file);
    const real = fs.realpathSync(file);
    return this.corrupt.has(real) ? { ok: false, message: 'qemu-img check found 1 corruption(s) and 0 leaked cluster(s)' } : { ok: true, message: 'no errors' };
  }

  /** A flattened copy: the top file's bytes (the fake does not read chains). */
  async flatten(source: { file: string; root: string }, target: string, opts: { signal?: AbortSignal; progress?: (done: number, total: number) => void } = {}): Promise<void> {
    await this.enter('flatten', source.file);
    if (opts.signal?.aborted) throw new Error('killed');
    const bytes = fs.readFileSync(fs.realpathSync(source.file));
    if (bytes.length >= 20 && bytes.readUInt32BE(0) === 0x514649fb) bytes.fill(0, 8, 20); // self-contained: no backing name
    fs.writeFileSync(target, bytes, { flag: 'wx', mode: 0o600 });
    const size = fs.statSync(target).size;
    this.sizes.set(target, size);
    opts.progress?.(size, size);
  }

  /** A re-based copy: the top file's bytes (the fake does not read chains). */
  async rebase(source: { file: string; root: string }, _base: { file: string; name: string }, target: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.enter('rebase', source.file);
    if (opts.signal?.aborted) throw new Error('killed');
    fs.copyFileSync(fs.realpathSync(source.file), target, fs.constants.COPYFILE_EXCL);
  }

  // backups: engine (issue 13)
  /** A real qcow2 header of `virtualSize`, naming `backing` (relative, format qcow2) when given. */
  async backupTarget(file: string, virtualSize: number, backing: string | null, signal?: AbortSignal): Promise<void> {
    await this.enter('backupTarget', file);
    if (signal?.aborted) throw new Error('killed');
    const b = imageHeader('qcow2', 1);
    b.writeBigUInt64BE(BigInt(virtualSize), 24);
    if (backing) {
      const name = Buffer.from(backing);
      const fmt = Buffer.from('qcow2');
      b.writeUInt32BE(0xe2792aca, 104);
      b.writeUInt32BE(fmt.length, 108);
      fmt.copy(b, 112);
      b.writeBigUInt64BE(1024n, 8);
      b.writeUInt32BE(name.length, 16);
      name.copy(b, 1024);
    }
    fs.writeFileSync(file, b, { flag: 'wx', mode: 0o600 });
    this.sizes.set(file, virtualSize);
  }
}


