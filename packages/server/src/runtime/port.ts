import crypto from 'node:crypto';
import type { DiskFormat, DiskInfo } from '@qemu-manager/contract';
import type { SourceFormat } from '../lib/image-check.js';

/**
 * What the domain needs from a hypervisor, and nothing of how it is driven. `qemu/` is the first
 * adapter (QEMU processes over QMP); another (libvirt, KubeVirt) implements the same interface.
 * Domain services import this module, never an adapter. Failures are AppErrors with a code
 * (VM_NOT_RUNNING, QEMU_ERROR, QEMU_UNREACHABLE, QEMU_START_FAILED, ...).
 */

/** A live VM's state as the hypervisor reports it. */
export type RunState = 'running' | 'paused' | 'stopping';

/** An image for the VM: the caller's open descriptor of each layer, image first, then its backing files. */
export interface LaunchDisk {
  layers: ReadonlyArray<{ fd: number; format: string }>;
}

/**
 * A VM definition to start. Images and the medium come as descriptors the caller opened under the
 * storage rules; they stay open until start() settles, then the caller closes them.
 */
export interface VmLaunch {
  vmId: string;
  name: string;
  cpus: number;
  memoryMiB: number;
  mac: string;
  /** The console display (VNC display number = port − 5900). */
  vncDisplay: number;
  accel: 'kvm' | 'tcg';
  disks: readonly LaunchDisk[];
  iso: { fd: number } | null;
  /** Hardware options (issue 12); omitted: BIOS, no TPM. */
  hardware?: LaunchHardware;
  /** A second, read-only CD-ROM (issue 12: the drivers ISO), opened like the medium; never booted from. */
  driversIso?: { fd: number } | null;
  /** Cloud-init (issue 12): the NoCloud seed documents; omitted or null: no seed (a stale one is removed). */
  cloudInit?: LaunchSeed | null;
  /**
   * Networks (issue 11): the VM's NICs in slot order. Omitted: one user-mode NIC in slot 0 with
   * `mac` and `hardware.nicModel` (what a VM had before networks). Empty: no NIC.
   */
  nics?: readonly LaunchNic[];
}

// networks (issue 11)
/** A user-mode port forward: QEMU listens on hostAddress:hostPort and connects to the guest's guestPort. */
export interface UserForward {
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

/**
 * One NIC of a VM. `slot` (0..7) names it in QEMU (netdev `net<slot>`, device `nic<slot>`) and
 * its tap. `user`: QEMU's user-mode NAT with these forwards (the guest is 10.0.2.15; the guest
 * isolation rules keep it off host services). `bridge`: a tap the runtime creates (through
 * TapDevices, owned by the VM's QEMU user, named by `tapName(vmId, slot)`), attached to this
 * Linux bridge, and removed when the VM's process is gone.
 */
export type LaunchNic = {
  slot: number;
  model: 'virtio' | 'e1000e' | 'rtl8139';
  mac: string;
} & ({ kind: 'user'; forwards: readonly UserForward[] } | { kind: 'bridge'; bridge: string });

/**
 * What a runtime needs from the host to give a VM a NIC on a bridge (the host network adapter,
 * hostnet/, implements it). Names are `qm-` + 8 hex digits + `.` + slot (see tapName), so they
 * never collide with a network's bridge `qm-<name>` (no dot there).
 */
export interface TapDevices {
  /** Creates the persistent tap `name` owned by `uid` (null: root), attached to `bridge` and up; replaces a stale one of that name. */
  create(name: string, uid: number | null, bridge: string): Promise<void>;
  /** Removes the tap (missing: nothing to do). */
  remove(name: string): Promise<void>;
  /** The tap's counters seen from the guest (rx: what the guest received), or null when it does not exist. */
  stats(name: string): { rxBytes: number; txBytes: number } | null;
}

/**
 * Cloud-init (issue 12): what a NoCloud seed holds. The runtime writes it as a read-only volume
 * labelled `cidata` at each start and attaches it as an extra CD-ROM.
 */
export interface LaunchSeed {
  userData: string;
  metaData: string;
  networkConfig: string | null;
}

/**
 * Hardware options (issue 12). The runtime keeps what they need with the VM (a UEFI variable
 * store of its own, the TPM state) across starts, and removes it in discard().
 */
export interface LaunchHardware {
  firmware: 'bios' | 'uefi';
  /** UEFI only: Secure Boot firmware with the Microsoft-keyed variable store. */
  secureBoot: boolean;
  /** A TPM 2.0 of the VM's own, started before the VM and stopped after it. */
  tpm: boolean;
  /** The machine type; omitted: q35. */
  machine?: 'q35' | 'pc';
  /** How the disks are attached; omitted: virtio-blk. */
  diskBus?: 'virtio' | 'sata' | 'scsi';
  /** The NIC's model; omitted: virtio. */
  nicModel?: 'virtio' | 'e1000e' | 'rtl8139';
  /** Boot devices in order (the disks in their order, the CD-ROM, the NIC); the ones left out are not booted from. Omitted: disks, then the CD-ROM. */
  bootOrder?: ReadonlyArray<'disk' | 'cdrom' | 'network'>;
}

/** The host process that runs a VM (pid plus its start time, so a reused pid is never mistaken). */
export interface RuntimeProcess {
  pid: number;
  pidStart: string;
}

export interface Launched extends RuntimeProcess {
  /** The command line, shown to the user (`last_command`). */
  command: string;
  state: RunState;
}

/** Where the console proxy connects: a unix socket, or a TCP address. */
export type ConsoleEndpoint = { path: string } | { host: string; port: number };

/**
 * What the runtime reports about a VM. `exited` comes once per process, after every resource the
 * process held is given back (its user, its files).
 */
export type RuntimeEvent =
  | { vmId: string; type: 'paused' | 'resumed' | 'shutdown' | 'reset' }
  | { vmId: string; type: 'exited' }
  | { vmId: string; type: 'job'; job: BlockJob }
  // the guest agent (issue 14): it started or stopped answering
  | { vmId: string; type: 'agent'; connected: boolean }
  // alerts (issue 14): the guest reported a panic (pvpanic device, QMP GUEST_PANICKED)
  | { vmId: string; type: 'panicked' }
  // alerts (issue 14): QEMU is ending because it got a signal (QMP SHUTDOWN, reason host-signal)
  | { vmId: string; type: 'killed' };

/** A long-running block operation of a live VM (mirror, backup, commit, stream). */
export interface BlockJob {
  id: string;
  kind: string;
  /** Bytes done and to do (both grow while the guest writes). */
  done: number;
  total: number;
  status: string;
}

/** Counters of a live VM, for metrics. */
export interface VmStats {
  /** Per disk: bytes and operations read and written since the start. */
  disks: Array<{ device: string; readBytes: number; writtenBytes: number; readOps: number; writeOps: number }>;
  /**
   * Metrics (issue 14): per NIC, bytes received and sent by the guest since the start, where the
   * NIC's backend counts them (tap NICs; user-mode NICs are left out). `id` is `nic<slot>`.
   */
  nics?: Array<{ id: string; rxBytes: number; txBytes: number }>;
  /** Metrics (issue 14): the guest's own view of its memory (the balloon driver's statistics), when the guest reports it. */
  guestMemory?: { totalBytes: number; availableBytes: number };
}

/** Metrics (issue 14): what the host spent on a VM's process so far. */
export interface ProcessUsage {
  /** CPU time (user + system), seconds since the process started. */
  cpuSeconds: number;
  /** Resident memory now, bytes. */
  rssBytes: number;
}

// serial console (issue 14)
/**
 * A running VM's first serial port, kept connected by the runtime: output is kept (the last
 * 64 KiB) and fanned out to subscribers; input goes to the guest.
 */
export interface SerialChannel {
  /** The last output (at most 64 KiB), oldest first. */
  backlog(): Buffer;
  /**
   * Calls `onData` with every chunk of output from now on, and `onEnd` once when the port goes
   * away (the VM stopped, the server lets go of it); returns the unsubscribe function.
   */
  subscribe(onData: (chunk: Buffer) => void, onEnd?: () => void): () => void;
  /**
   * Sends input to the guest. False: it is not connected at this moment (the input is dropped) or
   * input is waiting for the guest beyond a bound; the writer should wait for `onceWritable`.
   */
  write(data: Buffer): boolean;
  /** Calls `cb` once input is accepted again. */
  onceWritable(cb: () => void): void;
}

export interface VmRuntime {
  /** Starts a VM. Resolves once it runs (or is paused); a refused start is QEMU_START_FAILED. */
  start(def: VmLaunch): Promise<Launched>;
  /** Power-off: resolves once the process is gone (and `exited` was reported). */
  stop(vmId: string): Promise<void>;
  /** Presses the ACPI power button (the guest decides). */
  powerdown(vmId: string): Promise<void>;
  reset(vmId: string): Promise<void>;
  pause(vmId: string): Promise<void>;
  resume(vmId: string): Promise<void>;
  /** Inserts the medium at `file` (checked under the storage roots) into the VM's CD drive. */
  changeMedium(vmId: string, file: string): Promise<void>;
  ejectMedium(vmId: string): Promise<void>;
  /** The VM's process, or null when it does not run here. */
  process(vmId: string): RuntimeProcess | null;
  state(vmId: string): Promise<RunState>;
  /** Where its console is served while it runs; null when it does not run here. */
  console(vmId: string): ConsoleEndpoint | null;
  /** Long-running block operations of a live VM. */
  blockJobs(vmId: string): Promise<BlockJob[]>;
  stats(vmId: string): Promise<VmStats>;
  /** Metrics (issue 14): the VM process's CPU time and resident memory; null when it does not run here. */
  usage?(vmId: string): ProcessUsage | null;
  /** Metrics (issue 14): the VM's screen now, as PNG bytes at its native size (bounded); VM_NOT_RUNNING when it does not run. */
  screenshot?(vmId: string): Promise<Buffer>;
  /**
   * At server start: takes back a VM that kept running (`recorded` is the process the records
   * name, if any). Returns its state, or null when nothing of it runs (its resources are then
   * given back).
   */
  adopt(
    vmId: string,
    recorded: { pid: number; pidStart: string | null } | null,
    /** Networks (issue 11): the NICs it runs with now (as recorded, hot-plugged ones included); omitted: none known (its taps are still removed when it ends). */
    nics?: readonly LaunchNic[],
  ): Promise<{ state: RunState; process: RuntimeProcess } | null>;
  /** Gives back what a VM that is not running still holds (lent files, its run directory's sockets). */
  release(vmId: string): void;
  /** Removes everything the runtime keeps for a VM that is deleted. */
  discard(vmId: string): void;
  /** Cloud-init (issue 12): removes the VM's last written seed (its config was deleted). */
  discardSeed?(vmId: string): void;
  // serial console (issue 14)
  /** The running VM's serial port, or null (not running here, or started without a serial socket). */
  serial?(vmId: string): SerialChannel | null;
  /** The last `maxBytes` of the VM's serial log (its last run; empty when it never ran here). */
  serialLog?(vmId: string, maxBytes: number): Buffer;
  /** Subscribes to events of every VM; returns the unsubscribe function. */
  subscribe(listener: (ev: RuntimeEvent) => void): () => void;
  /** Lets go of every VM without stopping any (server shutdown: VMs keep running). */
  detachAll(): void;
  // disk resize (issue 10)
  /**
   * Grows the live VM's disk number `diskIndex` (its place in the definition it was started with)
   * to `bytes`; the guest sees the new size at once. Never shrinks: a size below the current one is
   * refused (DISK_CANNOT_SHRINK).
   */
  resizeDisk(vmId: string, diskIndex: number, bytes: number): Promise<void>;
  // snapshots (issue 10): internal snapshots of a live VM's disks, named by their index in the
  // VmLaunch it was started with (every one qcow2); resolve once the work is done in QEMU.
  /** Takes `tag` in every disk of `disks`; with `memory`, the RAM and device state too (in the first). */
  saveSnapshot(vmId: string, tag: string, opts: { disks: readonly number[]; memory: boolean }): Promise<void>;
  /** Goes back to `tag` (RAM state in the first disk) in every disk; the VM goes on from that moment. */
  loadSnapshot(vmId: string, tag: string, opts: { disks: readonly number[] }): Promise<void>;
  /** Deletes `tag` from every disk of `disks` that has it. */
  deleteSnapshot(vmId: string, tag: string, opts: { disks: readonly number[] }): Promise<void>;
  // backups: engine (issue 13): disks named by their index in the VmLaunch the VM was started with
  /** Each disk's virtual size and the dirty bitmaps its image node has. */
  backupDisks(vmId: string): Promise<BackupDiskState[]>;
  /**
   * Copies every disk of `job` at one point in time (one transaction) into its new target file
   * (a qcow2 the server created), and in the same instant adds each `newBitmap` (persistent) to
   * its disk. The VM keeps running. Resolves once every file is complete and closed; a failure (or
   * the signal) leaves the files to the caller and the new bitmaps in place (removeBitmaps).
   */
  backup(vmId: string, job: LiveBackup): Promise<void>;
  /** Removes these dirty bitmaps (missing ones are skipped). */
  removeBitmaps(vmId: string, bitmaps: ReadonlyArray<{ index: number; name: string }>): Promise<void>;
  /** At server start: cancels backup jobs a crash left in an adopted VM and removes their target nodes. */
  recoverBackups(vmId: string): Promise<number>;
  // the guest agent (issue 14): optional, a runtime without one reports it never connected.
  // Every call but agentStatus fails with AGENT_UNAVAILABLE when the agent does not answer.
  /** Whether the running VM's guest agent answered its last check, and when it last answered. */
  agentStatus?(vmId: string): GuestAgentStatus;
  /** What the agent says about the guest (bounded and validated; cached a few seconds). */
  agentInfo?(vmId: string): Promise<GuestAgentInfo>;
  /** Asks the guest to power itself off (guest-shutdown). */
  agentShutdown?(vmId: string): Promise<void>;
  /** Freezes the guest's file systems (returns how many); thaw undoes it. */
  agentFreeze?(vmId: string): Promise<number>;
  agentThaw?(vmId: string): Promise<number>;
  // networks (issue 11): live changes to a running VM's NICs (QMP netdev_add/device_add/device_del).
  // VM_NOT_RUNNING when it does not run here; QEMU_ERROR when QEMU refuses. The NICs a VM was
  // started with plus the ones plugged since are what the runtime knows (a stop forgets them).
  /** Hot-plugs a NIC (a tap NIC's tap is created first and removed again if the plug fails). */
  attachNic?(vmId: string, nic: LaunchNic): Promise<void>;
  /** Unplugs the NIC of `slot` and waits until the guest let it go (DEVICE_DELETED), then removes its netdev and tap. */
  detachNic?(vmId: string, slot: number): Promise<void>;
  /** Adds a forward to the user-mode NIC of `slot` (PORT_IN_USE when QEMU cannot listen there). */
  addUserForward?(vmId: string, slot: number, fwd: UserForward): Promise<void>;
  /** Removes it (the port closes). */
  removeUserForward?(vmId: string, slot: number, fwd: UserForward): Promise<void>;
}

/** The tap of a VM's NIC: `qm-` + 8 hex digits of a hash of the VM id + `.` + slot (at most 15 characters). */
export function tapName(vmId: string, slot: number): string {
  return `qm-${crypto.createHash('sha256').update(vmId).digest('hex').slice(0, 8)}.${slot}`;
}

// the guest agent (issue 14)
export interface GuestAgentStatus {
  connected: boolean;
  /** ISO-8601, or null when it never answered since the VM started (or was adopted). */
  lastSeen: string | null;
}
export interface GuestAgentInfo {
  version?: string;
  os?: { name: string; version: string; kernel: string };
  hostname?: string;
  interfaces?: Array<{ name: string; mac: string | null; ips: string[] }>;
  fsinfo?: Array<{ mountpoint: string; type: string; name: string; totalBytes: number | null; usedBytes: number | null }>;
}

// backups: engine (issue 13)
export interface BackupBitmap {
  name: string;
  persistent: boolean;
  /** False when the image says it was not saved properly (a QEMU that crashed): unusable. */
  consistent: boolean;
}

export interface BackupDiskState {
  index: number;
  virtualSize: number;
  bitmaps: BackupBitmap[];
}

export interface LiveBackupDisk {
  index: number;
  /** The new qcow2 file to write (for an incremental, an overlay naming the parent's file). */
  file: string;
  /** Copy only what this bitmap marks (an incremental); null: everything. */
  bitmap: string | null;
  /** A new persistent bitmap to start at the point in time (null: none, e.g. a raw disk). */
  newBitmap: string | null;
}

export interface LiveBackup {
  id: string;
  disks: readonly LiveBackupDisk[];
  /** Bytes a second the copy may go at (unlimited when absent). */
  speedLimit?: number;
  signal: AbortSignal;
  progress(done: number, total: number): void;
  /**
   * Around the point in time (issue 14): `before` right before the jobs start (e.g. fsfreeze through
   * the guest agent), `after` right after they started or failed to (the thaw).
   */
  pointInTime?: { before(): Promise<void>; after(): Promise<void> };
}

// snapshots (issue 10)
/** An internal snapshot found in an image. */
export interface ImageSnapshot {
  name: string;
  /** Bytes of saved VM state (0: disks only). */
  vmStateBytes: number;
  /** When it was taken (the image's own clock record), ISO-8601. */
  date: string;
}

/** Reads and creates disk images (qemu-img today), always on untrusted images. */
export interface ImageTool {
  /** `format` may also be vdi or vhdx: an upload's or import's image, read as a copy's source. */
  info(file: string, format: SourceFormat): Promise<DiskInfo>;
  /** Creates a new image at a server-chosen path; aborting `signal` stops it. */
  create(file: string, format: DiskFormat, sizeGb: number, signal?: AbortSignal): Promise<void>;
  // snapshots (issue 10)
  /** The internal snapshots of an image (read like info: untrusted, unprivileged). */
  snapshots(file: string, format: DiskFormat): Promise<ImageSnapshot[]>;
  /**
   * Creates, applies (reverts the image to) or deletes the internal snapshot `tag` of a managed or
   * attached image no VM has open, on a descriptor the server opened under the storage rules.
   */
  snapshot(file: string, format: DiskFormat, op: 'create' | 'apply' | 'delete', tag: string): Promise<void>;
  // disk resize (issue 10)
  /**
   * Grows the server's own image at `file` (no process may have it open) to `sizeGb`; never
   * shrinks. Aborting `signal` stops it.
   */
  resize(file: string, format: DiskFormat, sizeGb: number, signal?: AbortSignal): Promise<void>;
  // --- clones and backing chains (issue 10) ---
  /**
   * Creates a new qcow2 overlay at a server-chosen path whose backing file is `backing` (a managed
   * disk, recorded with its format; its virtual size is read the safe way, it is never probed).
   */
  overlay(file: string, backing: { file: string; format: DiskFormat }, signal?: AbortSignal): Promise<void>;
  /**
   * Copies the image `source` (its whole backing chain, each layer checked under the storage rules
   * and by `checkBacking`) into a new image of the same format at the server-chosen `target`, which
   * is then self-contained. Progress in bytes of the virtual size; aborting `signal` stops it.
   */
  copy(
    /** vdi and vhdx only as the source of an upload's or import's conversion. */
    source: { file: string; format: SourceFormat },
    target: string,
    opts: {
      signal?: AbortSignal;
      progress?: (done: number, total: number) => void;
      checkBacking?: (real: string, index: number) => void;
      /** import and convert (issue 10): the new image's format (default: the source's). */
      format?: DiskFormat;
    },
  ): Promise<void>;
  // backups: restore, verify, delete, import (issue 13). Backup files lie under a backup target
  // (`root`), not under the storage roots; every layer is opened below `root` without following a
  // symlink and checked by the server's header parser, and `checkBacking` refuses a layer by its real path.
  /** `qemu-img check` of the file alone (its backing file is not opened), read unprivileged. */
  check(file: string, format: DiskFormat, opts: { root: string }): Promise<ImageCheckResult>;
  /**
   * A new self-contained qcow2 at the server-chosen `target` with the content of `source` and its
   * whole backing chain (a backup chain flattened). `partial` is told each temporary file first.
   */
  flatten(source: ChainSource, target: string, opts?: ChainOptions): Promise<void>;
  /**
   * A new qcow2 overlay at `target` holding `source`'s view (its chain) re-based onto `base`
   * (whose chain lies under the same root): every cluster where the two differ is written, and
   * the header names `base.name` (relative to target's directory), format qcow2.
   */
  rebase(source: ChainSource, base: { file: string; name: string }, target: string, opts?: ChainOptions): Promise<void>;
  // backups: engine (issue 13)
  /**
   * Creates the new qcow2 file of a backup at a server-chosen path: `virtualSize` bytes, and for an
   * incremental the relative backing name of the parent backup's file (format qcow2 recorded,
   * never opened).
   */
  backupTarget(file: string, virtualSize: number, backing: string | null, signal?: AbortSignal): Promise<void>;
}

// backups: restore, verify, delete, import (issue 13)
export interface ImageCheckResult {
  ok: boolean;
  /** What qemu-img found (corruptions, leaks), or why it could not check. */
  message: string;
  /** qcow2: where the last cluster in use ends (qemu-img check's image-end-offset), when it says (backups: bench). */
  imageEndOffset?: number;
}

export interface ChainSource {
  file: string;
  /** The directory every layer must lie under (a backup target). */
  root: string;
  checkBacking?: (real: string, index: number) => void;
}

export interface ChainOptions {
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
  /** A temporary file the tool is about to create (removed by it, or by the task after a crash). */
  partial?: (file: string) => void;
}
