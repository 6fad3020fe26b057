import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { shellQuote } from '../lib/exec.js';
import type { Logger } from '../lib/log.js';
import { delay, waitUntil } from '../lib/time.js';
import type { StorageRoots } from '../lib/storage.js';
import { buildArgv, checkNic, NIC_SLOTS, netdevAddArgs, nicDeviceAddArgs, type ArgvInput, type ArgvMachine, type ArgvNic } from './argv.js';
import { tapName, type LaunchNic, type TapDevices } from '../runtime/port.js'; // networks (issue 11)
import type { IdentityPool, QemuIdentity } from './identity.js';
import { Ownership } from './ownership.js';
import { cmdlineOf, isAlive, killHard, readCmdline, readStat, terminate, uidOf } from '../lib/proc.js';
import {
  O_DIRECTORY,
  O_NOFOLLOW,
  O_RDONLY,
  O_WRONLY,
  O_APPEND,
  O_TRUNC,
  clearServerDir,
  ensureServerDir,
  openOwnFile,
  removeForeignDir,
  runDirFailure,
  runPaths,
  type RunPaths,
} from './rundir.js';
import { QmpClient, type QmpEvent } from './qmp/client.js';
import { QmpCommands, type QmpRunState } from './qmp/commands.js';
import { qmpCall } from './qmp/errors.js'; // networks (issue 11)
import { SerialLink } from './serial.js'; // serial console (issue 14)
import { reclaimTpmState, recordedSwtpm, startSwtpm, stopSwtpm, type SwtpmProcess } from './swtpm.js'; // TPM (issue 12)
import { AgentSession, type AgentSessionOptions } from './agent.js'; // the guest agent (issue 14)

/** A QEMU process we manage: detached from the server, reached over its QMP socket. */
interface Instance {
  vmId: string;
  pid: number;
  pidStart: string;
  qmp: QmpClient;
  commands: QmpCommands;
  /** The unprivileged user it runs as (null: the server's own user). */
  identity: QemuIdentity | null;
  /** Resolves when the process exits, for a QEMU this server spawned (its child); absent for adopted ones. */
  exit?: Promise<unknown>;
  /**
   * Where this QEMU serves VNC, as it was started (an adopted QEMU may predate the current VNC_TCP
   * setting): its unix socket (reached through the server's link) or a TCP display on loopback.
   */
  vnc: VncEndpoint;
  /** The VM's TPM emulator (issue 12), stopped after QEMU exits. */
  tpm?: SwtpmProcess | null;
  /** Serial console (issue 14): the server's connection to its first serial port (none: a QEMU started without the socket). */
  serial?: SerialLink | null;
  /** The guest agent (issue 14): kept connected while the VM runs. */
  agent?: AgentSession;
  // networks (issue 11)
  /** The NICs it has now (started with, plus hot-plugged, minus unplugged), by slot. */
  nics: Map<number, LaunchNic>;
  /** Its machine type (where a hot-plugged NIC goes). */
  machine: ArgvMachine;
  /** The slots that have a PCIe root port (q35; from its command line). */
  rootPorts: Set<number>;
  /** Taps to remove once the process is gone. */
  taps: Set<string>;
  /** NIC changes, one at a time. */
  nicOps: Promise<unknown>;
}

type VncEndpoint = { socket: true } | { display: number };

/**
 * The VNC endpoint in a QEMU command line (`-vnc unix:<path>[,...]` or `-vnc <host>:<display>[,...]`),
 * or null when there is none that we would have given.
 */
export function vncFromArgv(argv: readonly string[]): VncEndpoint | null {
  const i = argv.lastIndexOf('-vnc');
  const spec = i >= 0 ? argv[i + 1] : undefined;
  if (!spec) return null;
  const addr = spec.split(',')[0]!;
  if (addr.startsWith('unix:')) return addr.length > 'unix:'.length ? { socket: true } : null;
  const m = /^(?:[\w.-]+|\[[0-9a-fA-F:]+\])?:(\d{1,5})$/.exec(addr);
  return m ? { display: Number(m[1]) } : null;
}

/**
 * What a supervisor reports: `event` is a QMP event of a managed VM (STOP, RESUME, SHUTDOWN,
 * RESET, ...); `exit` says the VM's QEMU is gone (after quit, a guest power-off, a crash or a
 * kill), once per instance, after its user and files were given back.
 */
interface SupervisorEvents {
  event: [vmId: string, ev: QmpEvent];
  exit: [vmId: string];
  /** The guest agent (issue 14) started or stopped answering. */
  agent: [vmId: string, connected: boolean];
}

interface SupervisorHooks {
  /**
   * Runs after the QEMU user is chosen and right before QEMU is spawned; if it throws, the start
   * fails with that error and everything taken for it is given back.
   */
  beforeSpawn?(identity: QemuIdentity | null): Promise<void>;
}

interface SupervisorOptions {
  /** Where media inserted live are checked and opened (for lending them to the QEMU user). */
  storage: StorageRoots;
  /** VNC_TCP=1: VNC on 127.0.0.1:<5900 + display> instead of the VM's unix socket. */
  vncTcp: boolean;
  /** TPM (issue 12): the swtpm program and where each VM keeps its TPM state. */
  swtpm?: { binary: string; stateDir: (vmId: string) => string };
  /** The guest agent (issue 14): timeouts and backoff (tests shorten them). */
  agent?: AgentSessionOptions;
  /** Networks (issue 11): creates and removes the taps of bridge NICs; absent: bridge NICs cannot start. */
  taps?: TapDevices;
  /** Networks (issue 11): how long an unplug waits for the guest to let go of a NIC. */
  unplugTimeoutMs?: number;
}

/** An image given to QEMU: the server's open descriptor of each layer, image first, then its backing files. */
export interface StartDisk {
  layers: ReadonlyArray<{ fd: number; format: string }>;
}

interface StartInput extends Omit<ArgvInput, 'qmpSocket' | 'pidFile' | 'serialFd' | 'serialSocket' | 'vnc' | 'disks' | 'iso' | 'tpm' | 'driversIso' | 'nics'> {
  /** Networks (issue 11): the NICs (absent: the single user-mode NIC of `mac`/`nicModel`). */
  nics?: readonly LaunchNic[];
  vncDisplay: number;
  /** Open descriptors (the caller's; they stay open until start returns, then the caller closes them). */
  disks: readonly StartDisk[];
  iso: { fd: number } | null;
  /** TPM (issue 12): a swtpm started for it before QEMU (uefi: the caller's descriptors). */
  tpm?: boolean;
  /** The drivers CD-ROM (issue 12): the caller's open descriptor, inherited like the medium. */
  driversIso?: { fd: number } | null;
}

interface StartResult {
  pid: number;
  pidStart: string;
  command: string;
  status: QmpRunState;
}

const UNIX_PATH_MAX = 107;
const NO_MESSAGE = 'QEMU exited without a message';
const MAX_LOG_BYTES = 1 << 20;

/** Turns QEMU's stderr into one readable sentence, without the program-name prefix. */
function qemuErrorMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^qemu-system-[\w-]+:\s*/, '').trim())
    .filter((l) => l !== '');
  return lines.join('; ') || NO_MESSAGE;
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly instances = new Map<string, Instance>();

  constructor(
    private readonly runRoot: string,
    private readonly hooks: SupervisorHooks,
    private readonly log: Logger,
    private readonly pool: IdentityPool,
    private readonly opts: SupervisorOptions,
  ) {
    super();
    this.ownership = new Ownership(
      opts.storage,
      (vmId) => runPaths(this.runDir(vmId)).owners,
      (uid) => pool.isQemuUser(uid),
    );
  }

  private readonly ownership: Ownership;

  /** The typed QMP commands of a VM's QEMU, or null when none runs. */
  commands(vmId: string): QmpCommands | null {
    return this.instances.get(vmId)?.commands ?? null;
  }

  /** The VM's QEMU process, or null when none runs. */
  process(vmId: string): { pid: number; pidStart: string } | null {
    const inst = this.instances.get(vmId);
    return inst ? { pid: inst.pid, pidStart: inst.pidStart } : null;
  }

  /** The unprivileged user a VM's QEMU runs as (null: none runs, or it runs as the server's user). */
  identity(vmId: string): QemuIdentity | null {
    return this.instances.get(vmId)?.identity ?? null;
  }

  /** Serial console (issue 14): the running VM's serial port, or null. */
  serial(vmId: string): SerialLink | null {
    return this.instances.get(vmId)?.serial ?? null;
  }

  /** The TCP display a running VM's QEMU serves VNC on, or null (a unix socket, or no QEMU). */
  vncDisplay(vmId: string): number | null {
    const vnc = this.instances.get(vmId)?.vnc;
    return vnc && 'display' in vnc ? vnc.display : null;
  }

  runDir(vmId: string): string {
    return path.join(this.runRoot, vmId);
  }

  /**
   * The socket the console proxy connects to (in the server's own run dir), or null when the VM's
   * QEMU serves VNC on TCP: as that QEMU was started (an adopted one may predate the current
   * VNC_TCP setting), and with no instance as VNC_TCP says.
   */
  vncSocket(vmId: string): string | null {
    const vnc = this.instances.get(vmId)?.vnc ?? (this.opts.vncTcp ? { display: 0 } : { socket: true });
    return 'socket' in vnc ? runPaths(this.runDir(vmId)).vncSocket : null;
  }

  /**
   * Starts QEMU detached from the server: its own session (setsid), stdout/stderr appended to the
   * VM's qemu.log, as the unprivileged QEMU user when the server is root (dropped before exec, so
   * the seccomp sandbox can forbid set*id). QEMU gets its images, medium and serial log as inherited
   * descriptors, and starts paused (-S): once QMP has greeted us (after the machine is built) its
   * sockets are linked into the server's run dir, then it is continued. Resolves once query-status
   * says running; a QEMU that exits first is a failed start, reported with QEMU's own message.
   */
  async start(input: StartInput): Promise<StartResult> {
    const paths = runPaths(this.runDir(input.vmId));
    for (const sock of [paths.qemuQmpSocket, paths.qemuVncSocket, paths.qemuSerialSocket]) {
      if (Buffer.byteLength(sock) > UNIX_PATH_MAX) {
        throw new AppError('INTERNAL', `Socket path is too long for a unix socket: ${sock}`);
      }
    }
    // Networks (issue 11): the NICs checked before anything is taken.
    const argvNics = input.nics?.map((n) => this.argvNic(input.vmId, n));
    const identity = await this.pool.acquire();
    const handed: { over: boolean; tpm?: SwtpmProcess | null; taps: string[] } = { over: false, taps: [] };
    try {
      await this.hooks.beforeSpawn?.(identity);
      // Networks (issue 11): each bridge NIC's tap, owned by the VM's QEMU user, before QEMU opens it.
      for (const nic of input.nics ?? []) {
        if (nic.kind !== 'bridge') continue;
        const name = tapName(input.vmId, nic.slot);
        handed.taps.push(name);
        await this.createTap(name, identity, nic.bridge);
      }
      return await this.launch({ ...input, argvNics }, paths, identity, handed);
    } finally {
      // Never became an instance: the user and the files go back. (An instance gives them back
      // itself when it exits.)
      if (!handed.over) {
        if (handed.tpm !== undefined) await this.endTpm(input.vmId, handed.tpm); // TPM (issue 12)
        await this.removeTaps(input.vmId, handed.taps); // networks (issue 11)
        this.giveBack(input.vmId, identity);
      }
    }
  }

  /**
   * After QEMU is gone (or never came): its directory, lent media and user go back. `run/<id>/` is
   * made the server's first (one an older version gave the QEMU user is removed, its records
   * unread), so the record of lent media is only ever read from the server's own directory. Images
   * an older version chowned to the QEMU user `legacyUid` go back too (the VM may have been started
   * by that version and adopted).
   */
  private giveBack(vmId: string, identity: QemuIdentity | null, legacyUid: number | null = identity?.uid ?? null): void {
    const paths = runPaths(this.runDir(vmId));
    let own = false;
    try {
      ensureServerDir(paths.dir);
      own = true;
      for (const f of [paths.qmpSocket, paths.vncSocket, paths.serialSocket, paths.agentSocket]) fs.rmSync(f, { force: true });
      removeForeignDir(paths.qemuDir);
    } catch (err) {
      this.log.warn({ vmId, err: String(err) }, 'could not clean the run directory of a stopped VM');
    }
    if (own) this.ownership.restore(vmId);
    try {
      this.ownership.restoreLegacy(this.legacyRecord(vmId), legacyUid);
    } catch (err) {
      this.log.warn({ vmId, err: String(err) }, 'could not give back the images an older version lent');
    }
    this.pool.release(identity);
  }

  /** Where an older version recorded the owners of the images it chowned (next to the run dir). */
  private legacyRecord(vmId: string): string {
    return path.join(this.runRoot, `${vmId}.owners.json`);
  }

  /** The run dir for a start: the server's own directory, and a fresh one for the QEMU user. */
  private prepareRunDir(paths: RunPaths, identity: QemuIdentity | null): void {
    ensureServerDir(paths.dir);
    clearServerDir(paths.dir);
    for (const f of [paths.qmpSocket, paths.vncSocket, paths.serialSocket, paths.agentSocket]) fs.rmSync(f, { force: true });
    removeForeignDir(paths.qemuDir);
    fs.mkdirSync(paths.qemuDir, { mode: 0o700 });
    if (identity) {
      const fd = fs.openSync(paths.qemuDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        fs.fchownSync(fd, identity.uid, identity.gid);
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  /**
   * Hard-links a socket QEMU made in its directory into the server's run dir (link() does not
   * follow a symlink), and checks it is a socket of the QEMU user: from then on the server connects
   * through a path the QEMU user cannot change.
   */
  private linkSocket(from: string, to: string, identity: QemuIdentity | null): void {
    try {
      fs.rmSync(to, { force: true });
      fs.linkSync(from, to);
    } catch (err) {
      throw new AppError('QEMU_START_FAILED', `Cannot link QEMU's socket ${from}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
        cause: err,
      });
    }
    const st = fs.lstatSync(to);
    const uid = identity?.uid ?? process.getuid?.() ?? 0;
    if (!st.isSocket() || st.uid !== uid) {
      fs.rmSync(to, { force: true });
      throw new AppError('QEMU_START_FAILED', `Cannot start: ${from} is not QEMU's socket`);
    }
    // Its mode came from QEMU's umask; the link is ours (checked just now, in our own directory).
    fs.chmodSync(to, 0o600);
  }

  private async launch(
    input: StartInput & { argvNics: ArgvNic[] | undefined },
    paths: RunPaths,
    identity: QemuIdentity | null,
    handed: { over: boolean; tpm?: SwtpmProcess | null; taps: string[] },
  ): Promise<StartResult> {
    try {
      this.prepareRunDir(paths, identity);
    } catch (err) {
      throw runDirFailure(err);
    }
    // TPM (issue 12): its emulator first, as the VM's user, its socket in the QEMU user's dir.
    let tpm: { socket: string } | null = null;
    if (input.tpm) {
      const swtpm = this.opts.swtpm;
      if (!swtpm) throw new AppError('QEMU_START_FAILED', 'Cannot start: this server has no TPM emulator configured');
      const socket = path.join(paths.qemuDir, 'swtpm.sock');
      handed.tpm = null;
      try {
        handed.tpm = await startSwtpm({ binary: swtpm.binary, stateDir: swtpm.stateDir(input.vmId), socket, identity, logFile: paths.log, recordFile: this.swtpmRecord(input.vmId) });
      } catch (err) {
        throw runDirFailure(err);
      }
      tpm = { socket };
    }

    // The child's descriptors: 0-2 as usual, then every image layer, then the medium.
    const own: number[] = [];
    let child: ChildProcess;
    let argv: string[];
    let logStart: number;
    const vnc = this.opts.vncTcp ? { display: input.vncDisplay } : { socket: paths.qemuVncSocket };
    try {
      const logFd = openOwnFile(paths.log, O_WRONLY | O_APPEND);
      own.push(logFd);
      logStart = fs.fstatSync(logFd).size;
      if (logStart > MAX_LOG_BYTES) {
        fs.ftruncateSync(logFd, 0);
        logStart = 0;
      }
      // Each start begins the serial log afresh (serial console, issue 14: the server writes it from
      // the serial socket; the older serial.log.1 went with clearServerDir).
      own.push(openOwnFile(paths.serialLog, O_WRONLY | O_TRUNC));
      const inherited: number[] = [];
      const childFd = (fd: number) => 3 + inherited.push(fd) - 1;
      const disks = input.disks.map((d) => ({ layers: d.layers.map((l) => ({ format: l.format, fd: childFd(l.fd) })) }));
      const iso = input.iso ? { fd: childFd(input.iso.fd) } : null;
      // UEFI (issue 12): the firmware code and the VM's variable store, inherited like the images.
      const uefi = input.uefi ? { codeFd: childFd(input.uefi.codeFd), varsFd: childFd(input.uefi.varsFd), secureBoot: input.uefi.secureBoot } : null;
      const driversIso = input.driversIso ? { fd: childFd(input.driversIso.fd) } : null; // the drivers CD-ROM (issue 12)
      const seed = input.seed ? { fd: childFd(input.seed.fd) } : null; // cloud-init (issue 12): the caller's descriptor
      const { nics: _launchNics, argvNics, ...rest } = input;
      argv = buildArgv({ ...rest, ...(argvNics ? { nics: argvNics } : {}), disks, iso, uefi, tpm, driversIso, seed, vnc, qmpSocket: paths.qemuQmpSocket, pidFile: paths.pidFile, serialSocket: paths.qemuSerialSocket, agentSocket: paths.qemuAgentSocket, balloon: true });
      // Paused until its sockets are linked (see start()).
      argv.splice(argv.indexOf('-sandbox'), 0, '-S');
      const [file, ...args] = argv as [string, ...string[]];
      child = spawn(file, args, {
        detached: true,
        stdio: ['ignore', logFd, logFd, ...inherited],
        ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
      });
    } catch (err) {
      throw runDirFailure(err);
    } finally {
      for (const fd of own) fs.closeSync(fd);
    }
    const command = shellQuote(argv);
    const file = argv[0]!;
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`cannot run ${file}: ${err.message}`));
      child.once('exit', (code, sig) => resolve(sig ? `killed by ${sig}` : `exited with ${code}`));
    });
    child.unref();
    const failed = async (fallback: string): Promise<never> => {
      const how = await Promise.race([exited, delay(2000).then(() => null)]);
      if (how === null && child.pid) killHard(child.pid, readStat(child.pid)?.startTime ?? '');
      const msg = qemuErrorMessage(readFrom(paths.log, logStart));
      // Networks (issue 11): a user-mode forward whose host port QEMU could not listen on.
      if (msg.includes('Could not set up host forwarding rule')) throw new AppError('PORT_IN_USE', `QEMU failed to start: ${msg}`);
      throw new AppError('QEMU_START_FAILED', `QEMU failed to start: ${msg === NO_MESSAGE ? `${fallback} (${how ?? 'killed'})` : msg}`);
    };

    const appeared = await Promise.race([waitForFile(paths.qemuQmpSocket, 30_000), exited.then(() => false)]);
    if (!appeared) return failed('QEMU exited before opening its QMP socket');
    try {
      this.linkSocket(paths.qemuQmpSocket, paths.qmpSocket, identity);
    } catch (err) {
      return failed(`cannot link QEMU's QMP socket: ${String(err)}`);
    }
    // The socket file exists from bind(); listen() follows a moment later, so a refused connect
    // is retried while QEMU lives.
    let qmp: QmpClient | null = null;
    let gone = false;
    void exited.then(() => (gone = true));
    const deadline = Date.now() + 60_000;
    while (!qmp && !gone && Date.now() < deadline) {
      qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: deadline - Date.now() }).catch(async () => {
        await delay(5);
        return null;
      });
    }
    if (!qmp) return failed('QEMU did not answer on QMP');
    const pid = child.pid!;
    const stat = readStat(pid);
    if (!stat) {
      qmp.close();
      return failed('QEMU is already gone');
    }
    const endpoint: VncEndpoint = 'socket' in vnc ? { socket: true } : { display: vnc.display };
    const instance = this.track(input.vmId, pid, stat.startTime, qmp, identity, endpoint, exited);
    instance.tpm = handed.tpm ?? null; // TPM (issue 12)
    // networks (issue 11)
    this.setNics(instance, argv, input.nics ?? [{ slot: 0, model: input.nicModel ?? 'virtio', mac: input.mac, kind: 'user', forwards: [] }]);
    for (const t of handed.taps) instance.taps.add(t);
    handed.over = true;
    let status: QmpRunState;
    try {
      // The VNC server exists once QMP answers; no guest code has run yet.
      if ('socket' in vnc) this.linkSocket(paths.qemuVncSocket, paths.vncSocket, identity);
      // Serial console (issue 14): connected before the guest's first instruction, so no output is lost.
      this.linkSocket(paths.qemuSerialSocket, paths.serialSocket, identity);
      instance.serial = new SerialLink(paths.serialSocket, paths.serialLog, this.log, input.vmId, { truncate: true });
      if (!(await instance.serial.connect())) this.log.warn({ vmId: input.vmId }, 'serial: cannot connect to the serial socket yet; retrying');
      this.linkSocket(paths.qemuAgentSocket, paths.agentSocket, identity); // the guest agent (issue 14)
      this.watchAgent(instance);
      await instance.commands.cont();
      ({ status } = await instance.commands.queryStatus());
    } catch (err) {
      if (err instanceof AppError) {
        await this.stop(input.vmId);
        throw err;
      }
      return failed('QEMU stopped answering right after it started');
    }
    if (status === 'internal-error' || status === 'guest-panicked' || status === 'shutdown') {
      await this.stop(input.vmId);
      throw new AppError('QEMU_START_FAILED',
        `QEMU started but the guest is in state ${status}` +
          (status === 'internal-error' ? ' (the accelerator cannot run it; try ACCEL=tcg)' : ''),
      );
    }
    return { pid, pidStart: stat.startTime, command, status };
  }

  /**
   * Lets the VM's unprivileged QEMU read a medium inserted while it runs (opened under the storage
   * roots without following symlinks, fchown'ed by descriptor when that user cannot read it).
   * Returns the real path to give QEMU.
   */
  grantMedium(vmId: string, file: string): string {
    return this.ownership.lendMedium(vmId, this.instances.get(vmId)?.identity ?? null, file);
  }

  /** Gives a stopped VM's files back to their owners (also for a VM found dead at server start). */
  releaseFiles(vmId: string): void {
    const dir = this.runDir(vmId);
    // An older version gave the run dir to the VM's QEMU user while it ran (and chowned images to
    // it, recorded next to the run dir): a run dir still owned by a QEMU user names that user.
    let legacyUid: number | null = null;
    try {
      const st = fs.lstatSync(dir);
      if (st.isDirectory() && st.uid !== (process.getuid?.() ?? 0) && this.pool.isQemuUser(st.uid)) legacyUid = st.uid;
    } catch {
      if (!fs.existsSync(this.legacyRecord(vmId))) return; // never ran here
    }
    // TPM (issue 12): a swtpm left by a QEMU that is gone.
    void this.endTpm(vmId, recordedSwtpm(this.swtpmRecord(vmId)));
    // Networks (issue 11): taps left by a QEMU that is gone (a server killed while it ran).
    void this.removeTaps(vmId, [...Array(NIC_SLOTS).keys()].map((s) => tapName(vmId, s)));
    this.giveBack(vmId, null, legacyUid);
  }

  // --- TPM (issue 12) ----------------------------------------------------------------------

  /** Where the server records the pid of a VM's swtpm (its own run dir). */
  private swtpmRecord(vmId: string): string {
    return path.join(this.runDir(vmId), 'swtpm.json');
  }

  /** Stops the VM's swtpm, forgets its record and takes its state back from the VM's user. */
  private async endTpm(vmId: string, proc: SwtpmProcess | null): Promise<void> {
    try {
      await stopSwtpm(proc, this.swtpmRecord(vmId));
      if (this.opts.swtpm) reclaimTpmState(this.opts.swtpm.stateDir(vmId));
    } catch (err) {
      this.log.warn({ vmId, err: String(err) }, 'could not stop the TPM emulator of a stopped VM');
    }
  }

  /**
   * Re-adopts a QEMU that was started before this server process: the pid must still be that VM's
   * QEMU (same /proc start time and `-uuid`), and its QMP socket must answer. Returns the QMP status,
   * or null if there is nothing to adopt.
   */
  async adopt(vmId: string, pid: number, pidStart: string | null, nics?: readonly LaunchNic[]): Promise<QmpRunState | null> {
    if (!isAlive(pid, pidStart) || !isQemuOfVm(pid, vmId)) return null;
    const stat = readStat(pid);
    if (!stat) return null;
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(runPaths(this.runDir(vmId)).qmpSocket, { timeoutMs: 3000 });
    } catch (err) {
      // A QEMU of ours that cannot be managed would hold its images forever: end it.
      this.log.warn({ vmId, pid, err: String(err) }, 'cannot reach QMP of a running VM; killing it');
      await terminate(pid, stat.startTime);
      return null;
    }
    // VNC as that QEMU was started, which may not be what VNC_TCP says now.
    const vnc = vncFromArgv(cmdlineOf(pid)) ?? (this.opts.vncTcp ? { display: 0 } : { socket: true });
    const inst = this.track(vmId, pid, stat.startTime, qmp, this.pool.claim(uidOf(pid)), vnc);
    inst.tpm = recordedSwtpm(this.swtpmRecord(vmId)); // TPM (issue 12): the one it ran with, never a second
    // Networks (issue 11): its NICs as the caller recorded them; not told, every tap name of the VM
    // is removed once it is gone.
    this.setNics(inst, cmdlineOf(pid), nics ?? null);
    if (!nics) for (let s = 0; s < NIC_SLOTS; s++) inst.taps.add(tapName(vmId, s));
    else for (const n of nics) if (n.kind === 'bridge') inst.taps.add(tapName(vmId, n.slot));
    this.adoptSerial(inst); // serial console (issue 14)
    this.watchAgent(inst); // the guest agent (issue 14): reconnects to the link made at its start
    const { status } = await inst.commands.queryStatus();
    return status;
  }

  /**
   * Serial console (issue 14): an adopted QEMU's serial socket (through the server's link, made
   * when it started), connected again; its log goes on where it was. A QEMU started by a version
   * without it has none.
   */
  private adoptSerial(inst: Instance): void {
    const paths = runPaths(this.runDir(inst.vmId));
    try {
      if (!fs.lstatSync(paths.serialSocket).isSocket()) return;
      inst.serial = new SerialLink(paths.serialSocket, paths.serialLog, this.log, inst.vmId, { truncate: false });
      void inst.serial.connect();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ vmId: inst.vmId, err: String(err) }, 'serial: cannot take the serial port back');
    }
  }

  /** Power-off: QMP quit, then SIGTERM, then SIGKILL, each with a short deadline. Resolves once QEMU is gone. */
  async stop(vmId: string): Promise<void> {
    const inst = this.instances.get(vmId);
    if (!inst) return;
    if (!inst.qmp.closed) {
      inst.commands.quit(2000).catch(() => undefined);
      await inst.qmp.waitClosed(3000);
    }
    if (!(await waitGone(inst, 1000))) {
      this.log.warn({ vmId, pid: inst.pid }, 'QEMU ignored quit; sending SIGTERM');
      await terminate(inst.pid, inst.pidStart);
    }
    inst.qmp.close();
    await this.waitExitHandled(vmId);
  }

  private exitWaiters = new Map<string, Array<() => void>>();
  /**
   * The exit handling under way per VM: it forgets the instance first, then stops the swtpm and
   * gives everything back, so a stop that arrives in between waits for it too (not only for the
   * instance to be gone).
   */
  private readonly exiting = new Map<string, Promise<void>>();

  private waitExitHandled(vmId: string): Promise<void> {
    if (!this.instances.has(vmId)) return this.exiting.get(vmId) ?? Promise.resolve();
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(vmId) ?? [];
      list.push(resolve);
      this.exitWaiters.set(vmId, list);
    });
  }

  private track(
    vmId: string,
    pid: number,
    pidStart: string,
    qmp: QmpClient,
    identity: QemuIdentity | null,
    vnc: VncEndpoint,
    exit?: Promise<unknown>,
  ): Instance {
    const inst: Instance = {
      vmId, pid, pidStart, qmp, commands: new QmpCommands(qmp), identity, vnc, ...(exit ? { exit } : {}),
      nics: new Map(), machine: 'q35', rootPorts: new Set(), taps: new Set(), nicOps: Promise.resolve(), // networks (issue 11)
    };
    this.instances.set(vmId, inst);
    qmp.on('event', (ev: QmpEvent) => this.emit('event', vmId, ev));
    qmp.once('close', () => {
      const handled: Promise<void> = this.handleClose(inst)
        .catch((err: unknown) => this.log.warn({ vmId, err: (err as Error).message }, 'handling the QEMU exit failed'))
        .finally(() => {
          if (this.exiting.get(vmId) === handled) this.exiting.delete(vmId);
        });
      this.exiting.set(vmId, handled);
    });
    return inst;
  }

  /** The QMP connection closed: QEMU is exiting. Confirm the process is gone, then report the exit. */
  private async handleClose(inst: Instance): Promise<void> {
    const exited = await waitGone(inst, 3000);
    if (!exited) {
      this.log.warn({ vmId: inst.vmId, pid: inst.pid }, 'QMP closed but QEMU still runs; terminating it');
      await terminate(inst.pid, inst.pidStart);
    }
    if (this.instances.get(inst.vmId) === inst) this.instances.delete(inst.vmId);
    inst.serial?.close(); // serial console (issue 14)
    inst.agent?.stop(); // the guest agent (issue 14)
    await this.endTpm(inst.vmId, inst.tpm ?? null); // TPM (issue 12)
    await inst.nicOps.catch(() => undefined); // networks (issue 11): a NIC change under way ends first
    await this.removeTaps(inst.vmId, [...inst.taps]);
    this.giveBack(inst.vmId, inst.identity);
    try {
      this.emit('exit', inst.vmId);
    } finally {
      const waiters = this.exitWaiters.get(inst.vmId) ?? [];
      this.exitWaiters.delete(inst.vmId);
      for (const w of waiters) w();
    }
  }

  // --- the guest agent (issue 14) ---------------------------------------------------------

  /** The guest agent session of a running VM, or null when none runs. */
  agent(vmId: string): AgentSession | null {
    return this.instances.get(vmId)?.agent ?? null;
  }

  private watchAgent(inst: Instance): void {
    inst.agent?.stop();
    inst.agent = new AgentSession(inst.vmId, runPaths(this.runDir(inst.vmId)).agentSocket, this.log, this.opts.agent, (connected) =>
      this.emit('agent', inst.vmId, connected),
    );
    inst.agent.start();
  }

  // --- networks (issue 11) -------------------------------------------------------------------

  /** A NIC of the port as argv.ts takes it (its tap named by tapName); refused when malformed. */
  private argvNic(vmId: string, nic: LaunchNic, hotplug = false): ArgvNic {
    const backend: ArgvNic['backend'] = nic.kind === 'user'
      ? { type: 'user', forwards: nic.forwards }
      : { type: 'tap', ifname: tapName(vmId, nic.slot) };
    const out: ArgvNic = { slot: nic.slot, model: nic.model, mac: nic.mac, backend };
    try {
      checkNic(out);
    } catch (err) {
      throw new AppError(hotplug ? 'VALIDATION' : 'QEMU_START_FAILED', `${hotplug ? 'Cannot add the NIC' : 'Cannot start'}: ${(err as Error).message}`);
    }
    return out;
  }

  /** At a start every failure is QEMU_START_FAILED; at a hot-plug NETWORKS_UNAVAILABLE (no taps here) or NETWORK_SETUP_FAILED. */
  private async createTap(name: string, identity: QemuIdentity | null, bridge: string, hotplug = false): Promise<void> {
    const taps = this.opts.taps;
    if (!taps) {
      throw new AppError(hotplug ? 'NETWORKS_UNAVAILABLE' : 'QEMU_START_FAILED', `${hotplug ? 'Cannot add the NIC' : 'Cannot start'}: host networking is not available (a NIC on a bridge needs a tap)`);
    }
    try {
      await taps.create(name, identity?.uid ?? null, bridge);
    } catch (err) {
      if (err instanceof AppError && !hotplug) throw err;
      throw new AppError(hotplug ? 'NETWORK_SETUP_FAILED' : 'QEMU_START_FAILED', `Cannot create the tap ${name} on ${bridge}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async removeTaps(vmId: string, names: readonly string[]): Promise<void> {
    const taps = this.opts.taps;
    if (!taps) return;
    for (const name of names) {
      try {
        await taps.remove(name);
      } catch (err) {
        this.log.warn({ vmId, tap: name, err: String(err) }, 'could not remove a tap');
      }
    }
  }

  /** What an instance has: its machine and root ports from its command line, and its NICs. */
  private setNics(inst: Instance, argv: readonly string[], nics: readonly LaunchNic[] | null): void {
    const i = argv.indexOf('-machine');
    inst.machine = argv[i + 1]?.split(',')[0] === 'pc' ? 'pc' : 'q35';
    inst.rootPorts = new Set(
      argv.filter((a, k) => argv[k - 1] === '-device' && a.startsWith('pcie-root-port,')).map((a) => Number(/,id=rp-nic(\d)(,|$)/.exec(a)?.[1] ?? NaN)).filter((n) => Number.isInteger(n)),
    );
    inst.nics = new Map((nics ?? []).map((n) => [n.slot, n]));
  }

  /** The NICs a running VM has now (slot order), or null when none runs. */
  nics(vmId: string): LaunchNic[] | null {
    const inst = this.instances.get(vmId);
    return inst ? [...inst.nics.values()].sort((a, b) => a.slot - b.slot) : null;
  }

  /** Records a changed NIC (e.g. its forwards) of a running VM. */
  updateNic(vmId: string, nic: LaunchNic): void {
    const inst = this.instances.get(vmId);
    if (inst?.nics.has(nic.slot)) inst.nics.set(nic.slot, nic);
  }

  /** Runs NIC changes of one VM one after another. */
  private nicOp<T>(vmId: string, fn: (inst: Instance) => Promise<T>): Promise<T> {
    const inst = this.instances.get(vmId);
    if (!inst) return Promise.reject(new AppError('VM_NOT_RUNNING', 'VM is not running'));
    const run = inst.nicOps.catch(() => undefined).then(() => {
      if (this.instances.get(vmId) !== inst) throw new AppError('VM_NOT_RUNNING', 'VM is not running');
      return fn(inst);
    });
    inst.nicOps = run.catch(() => undefined);
    return run;
  }

  /**
   * Hot-plugs a NIC: its tap first (bridge), then netdev_add and device_add (q35: into the slot's
   * root port). A step that fails undoes the ones before it.
   */
  attachNic(vmId: string, nic: LaunchNic): Promise<void> {
    return this.nicOp(vmId, async (inst) => {
      if (inst.nics.has(nic.slot)) throw new AppError('QEMU_ERROR', `The running VM already has a NIC in slot ${nic.slot}`);
      if (inst.machine === 'q35' && !inst.rootPorts.has(nic.slot)) {
        throw new AppError('VM_NOT_STOPPED', `The running VM has no hot-plug port for NIC slot ${nic.slot} (it was started before networks, or the slot sits on the root bus); stop it to add the NIC`);
      }
      const argvNic = this.argvNic(vmId, nic, true);
      const tap = nic.kind === 'bridge' ? tapName(vmId, nic.slot) : null;
      if (tap && nic.kind === 'bridge') {
        try {
          await this.createTap(tap, inst.identity, nic.bridge, true);
        } catch (err) {
          await this.removeTaps(vmId, [tap]);
          throw err;
        }
        inst.taps.add(tap);
      }
      let netdev = false;
      try {
        await qmpCall('the NIC backend', () => inst.commands.netdevAdd(netdevAddArgs(argvNic)));
        netdev = true;
        await qmpCall('the NIC hot-plug', () => inst.commands.deviceAdd(nicDeviceAddArgs(argvNic, inst.machine)));
      } catch (err) {
        if (netdev) await inst.commands.netdevDel(`net${nic.slot}`).catch(() => undefined);
        if (tap) {
          await this.removeTaps(vmId, [tap]);
          inst.taps.delete(tap);
        }
        if (err instanceof AppError && err.code === 'QEMU_ERROR' && /host forwarding rule/i.test(err.message)) throw new AppError('PORT_IN_USE', err.message);
        throw err;
      }
      inst.nics.set(nic.slot, nic);
    });
  }

  /** Unplugs the NIC of `slot`: device_del, DEVICE_DELETED (bounded), netdev_del, its tap removed. */
  detachNic(vmId: string, slot: number): Promise<void> {
    return this.nicOp(vmId, async (inst) => {
      const nic = inst.nics.get(slot);
      if (!nic) throw new AppError('QEMU_ERROR', `The running VM has no NIC in slot ${slot}`);
      if (inst.machine === 'q35' && !inst.rootPorts.has(slot)) {
        throw new AppError('VM_NOT_STOPPED', `NIC slot ${slot} sits on the q35 root bus, which cannot unplug; stop the VM to remove it`);
      }
      const timeoutMs = this.opts.unplugTimeoutMs ?? 10_000;
      const gone = await qmpCall('the NIC unplug', () => inst.commands.deviceDelAndWait(`nic${slot}`, timeoutMs));
      if (!gone) throw new AppError('TIMEOUT', `The guest did not release NIC ${slot} within ${Math.round(timeoutMs / 1000)} s (it needs ACPI or PCIe hot-plug support); it may still go later`);
      inst.nics.delete(slot);
      await qmpCall('the NIC backend removal', () => inst.commands.netdevDel(`net${slot}`));
      if (nic.kind === 'bridge') {
        const tap = tapName(vmId, slot);
        await this.removeTaps(vmId, [tap]);
        inst.taps.delete(tap);
      }
    });
  }

  /** Networks (issue 11): the counters of the running VM's tap NICs (user-mode NICs have none). */
  nicStats(vmId: string): Array<{ id: string; rxBytes: number; txBytes: number }> {
    const inst = this.instances.get(vmId);
    const taps = this.opts.taps;
    if (!inst || !taps) return [];
    const out: Array<{ id: string; rxBytes: number; txBytes: number }> = [];
    for (const nic of [...inst.nics.values()].sort((a, b) => a.slot - b.slot)) {
      if (nic.kind !== 'bridge') continue;
      const st = taps.stats(tapName(vmId, nic.slot));
      if (st) out.push({ id: `nic${nic.slot}`, rxBytes: st.rxBytes, txBytes: st.txBytes });
    }
    return out;
  }

  /** Closes QMP connections without stopping any VM (server shutdown: VMs keep running). */
  detachAll(): void {
    for (const inst of this.instances.values()) {
      inst.agent?.stop(); // the guest agent (issue 14)
      inst.qmp.removeAllListeners('close');
      inst.qmp.close();
      inst.serial?.close(); // serial console (issue 14)
    }
    this.instances.clear();
  }
}

/** True if the process is a QEMU started for this VM (its argv carries `-uuid <vmId>`). */
export function isQemuOfVm(pid: number, vmId: string): boolean {
  const argv = readCmdline(pid);
  if (!argv) return false;
  const i = argv.indexOf('-uuid');
  return i >= 0 && argv[i + 1] === vmId;
}

function readFrom(file: string, offset: number): string {
  try {
    const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
    try {
      const size = Math.min(fs.fstatSync(fd).size - offset, 16384);
      if (size <= 0) return '';
      const buf = Buffer.alloc(size);
      fs.readSync(fd, buf, 0, size, offset);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Resolves true once `file` exists (inotify on its directory, no polling), false after the timeout. */
function waitForFile(file: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const dir = path.dirname(file);
    const base = path.basename(file);
    let done = false;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      watcher.close();
      clearTimeout(timer);
      resolve(v);
    };
    const watcher = fs.watch(dir, (_ev, name) => {
      if (name === base && fs.existsSync(file)) finish(true);
    });
    watcher.on('error', () => finish(fs.existsSync(file)));
    const timer = setTimeout(() => finish(false), timeoutMs);
    if (fs.existsSync(file)) finish(true);
  });
}


/**
 * Waits for QEMU to be gone: /proc every millisecond (a zombie counts as gone, which is sooner than
 * Node's exit event for our own child), or that exit event, whichever comes first.
 */
async function waitGone(inst: Instance, timeoutMs: number): Promise<boolean> {
  const gone = () => !isAlive(inst.pid, inst.pidStart);
  let exited = false;
  void inst.exit?.then(() => (exited = true));
  return waitUntil(() => exited || gone(), timeoutMs, 1);
}
