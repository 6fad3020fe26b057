import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { shellQuote } from '../lib/exec.js';
import { delay, waitUntil } from '../lib/time.js';
import { buildArgv, type ArgvInput } from './argv.js';
import type { IdentityPool, QemuIdentity } from './identity.js';
import { Ownership } from './ownership.js';
import { isAlive, isQemuOfVm, readStat } from './proc.js';
import { QmpClient, type QmpEvent } from './qmp/client.js';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A QEMU process we manage: detached from the server, reached over its QMP socket. */
export interface Instance {
  vmId: string;
  pid: number;
  pidStart: string;
  qmp: QmpClient;
  /** The unprivileged user it runs as (null: the server's own user). */
  identity: QemuIdentity | null;
  /** Resolves when the process exits, for a QEMU this server spawned (its child); absent for adopted ones. */
  exit?: Promise<unknown>;
}

export interface SupervisorHooks {
  /** A QMP event of a managed VM (STOP, RESUME, SHUTDOWN, RESET, ...). */
  onEvent(vmId: string, ev: QmpEvent): void;
  /** The VM's QEMU is gone (after quit, a guest power-off, a crash or a kill). Called once per instance. */
  onExit(vmId: string): void;
}

export type StartInput = Omit<ArgvInput, 'qmpSocket' | 'pidFile' | 'serialLog'>;

export interface StartResult {
  instance: Instance;
  command: string;
  status: string;
}

const UNIX_PATH_MAX = 107;
const NO_MESSAGE = 'QEMU exited without a message';
const MAX_LOG_BYTES = 1 << 20;

/** Where a VM's runtime files live. */
export function runPaths(runDir: string) {
  return {
    dir: runDir,
    qmpSocket: path.join(runDir, 'qmp.sock'),
    pidFile: path.join(runDir, 'qemu.pid'),
    serialLog: path.join(runDir, 'serial.log'),
    log: path.join(runDir, 'qemu.log'),
  };
}

/** Turns QEMU's stderr into one readable sentence, without the program-name prefix. */
export function qemuErrorMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^qemu-system-[\w-]+:\s*/, '').trim())
    .filter((l) => l !== '');
  return lines.join('; ') || NO_MESSAGE;
}

export class Supervisor {
  private readonly instances = new Map<string, Instance>();

  constructor(
    private readonly runRoot: string,
    private readonly hooks: SupervisorHooks,
    private readonly log: Logger,
    private readonly pool: IdentityPool,
  ) {
    this.ownership = new Ownership(runRoot);
  }

  private readonly ownership: Ownership;

  get(vmId: string): Instance | undefined {
    return this.instances.get(vmId);
  }

  runDir(vmId: string): string {
    return path.join(this.runRoot, vmId);
  }

  /**
   * Starts QEMU detached from the server: its own session (setsid), stdout/stderr appended to the
   * VM's qemu.log, as the unprivileged QEMU user when the server is root (dropped before exec, so
   * the seccomp sandbox can forbid set*id). Resolves once QMP has greeted us (QEMU greets from its
   * main loop, i.e. after the machine is built) and query-status says running; a QEMU that exits
   * first is a failed start, reported with QEMU's own message.
   */
  async start(input: StartInput): Promise<StartResult> {
    const paths = runPaths(this.runDir(input.vmId));
    if (Buffer.byteLength(paths.qmpSocket) > UNIX_PATH_MAX) {
      throw new AppError(500, 'QEMU_START_FAILED', `QMP socket path is too long for a unix socket: ${paths.qmpSocket}`);
    }
    const identity = await this.pool.acquire();
    const handed = { over: false };
    try {
      return await this.launch(input, paths, identity, handed);
    } finally {
      // Never became an instance: the user and the files go back. (An instance gives them back
      // itself when it exits.)
      if (!handed.over) {
        this.pool.release(identity);
        this.ownership.restore(input.vmId);
      }
    }
  }

  private async launch(
    input: StartInput,
    paths: ReturnType<typeof runPaths>,
    identity: QemuIdentity | null,
    handed: { over: boolean },
  ): Promise<StartResult> {
    fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    for (const f of [paths.qmpSocket, paths.pidFile]) fs.rmSync(f, { force: true });
    this.ownership.give(input.vmId, identity, [paths.dir, ...input.disks.map((d) => d.path)], input.iso ? [input.iso] : []);

    const argv = buildArgv({ ...input, qmpSocket: paths.qmpSocket, pidFile: paths.pidFile, serialLog: paths.serialLog });
    const command = shellQuote(argv);
    const [file, ...args] = argv as [string, ...string[]];
    const big = fs.existsSync(paths.log) && fs.statSync(paths.log).size > MAX_LOG_BYTES;
    const logFd = fs.openSync(paths.log, big ? 'w' : 'a', 0o600);
    const logStart = fs.fstatSync(logFd).size;
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        detached: true,
        stdio: ['ignore', logFd, logFd],
        ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
      });
    } finally {
      fs.closeSync(logFd);
    }
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`cannot run ${file}: ${err.message}`));
      child.once('exit', (code, sig) => resolve(sig ? `killed by ${sig}` : `exited with ${code}`));
    });
    child.unref();
    const failed = async (fallback: string): Promise<never> => {
      const how = await Promise.race([exited, delay(2000).then(() => null)]);
      if (how === null && child.pid) killHard(child.pid, readStat(child.pid)?.startTime ?? '');
      const msg = qemuErrorMessage(readFrom(paths.log, logStart));
      throw new AppError(422, 'QEMU_START_FAILED', `QEMU failed to start: ${msg === NO_MESSAGE ? `${fallback} (${how ?? 'killed'})` : msg}`);
    };

    const appeared = await Promise.race([waitForFile(paths.qmpSocket, 30_000), exited.then(() => false)]);
    if (!appeared) return failed('QEMU exited before opening its QMP socket');
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
    const instance = this.track(input.vmId, pid, stat.startTime, qmp, identity, exited);
    handed.over = true;
    let status: string;
    try {
      ({ status } = await qmp.execute<{ status: string }>('query-status'));
    } catch {
      return failed('QEMU stopped answering right after it started');
    }
    if (status === 'internal-error' || status === 'guest-panicked' || status === 'shutdown') {
      await this.stop(input.vmId);
      throw new AppError(
        422,
        'QEMU_START_FAILED',
        `QEMU started but the guest is in state ${status}` +
          (status === 'internal-error' ? ' (the accelerator cannot run it; try ACCEL=tcg)' : ''),
      );
    }
    return { instance, command, status };
  }

  /** Lets the unprivileged QEMU read a medium inserted while it runs. */
  grantMedium(vmId: string, file: string): void {
    this.ownership.give(vmId, this.instances.get(vmId)?.identity ?? null, [], [file]);
  }

  /** Gives a stopped VM's files back to their owners (also for a VM found dead at server start). */
  releaseFiles(vmId: string): void {
    this.ownership.restore(vmId);
  }

  /**
   * Re-adopts a QEMU that was started before this server process: the pid must still be that VM's
   * QEMU (same /proc start time and `-uuid`), and its QMP socket must answer. Returns the QMP status,
   * or null if there is nothing to adopt.
   */
  async adopt(vmId: string, pid: number, pidStart: string | null): Promise<string | null> {
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
    this.track(vmId, pid, stat.startTime, qmp, this.pool.claim(uidOf(pid)));
    const { status } = await qmp.execute<{ status: string }>('query-status');
    return status;
  }

  /** Power-off: QMP quit, then SIGTERM, then SIGKILL, each with a short deadline. Resolves once QEMU is gone. */
  async stop(vmId: string): Promise<void> {
    const inst = this.instances.get(vmId);
    if (!inst) return;
    if (!inst.qmp.closed) {
      inst.qmp.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
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

  private waitExitHandled(vmId: string): Promise<void> {
    if (!this.instances.has(vmId)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(vmId) ?? [];
      list.push(resolve);
      this.exitWaiters.set(vmId, list);
    });
  }

  private track(vmId: string, pid: number, pidStart: string, qmp: QmpClient, identity: QemuIdentity | null, exit?: Promise<unknown>): Instance {
    const inst: Instance = { vmId, pid, pidStart, qmp, identity, ...(exit ? { exit } : {}) };
    this.instances.set(vmId, inst);
    qmp.on('event', (ev: QmpEvent) => this.hooks.onEvent(vmId, ev));
    qmp.once('close', () => void this.handleClose(inst));
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
    this.ownership.restore(inst.vmId);
    this.pool.release(inst.identity);
    try {
      this.hooks.onExit(inst.vmId);
    } finally {
      const waiters = this.exitWaiters.get(inst.vmId) ?? [];
      this.exitWaiters.delete(inst.vmId);
      for (const w of waiters) w();
    }
  }

  /** Closes QMP connections without stopping any VM (server shutdown: VMs keep running). */
  detachAll(): void {
    for (const inst of this.instances.values()) {
      inst.qmp.removeAllListeners('close');
      inst.qmp.close();
    }
    this.instances.clear();
  }
}

function readFrom(file: string, offset: number): string {
  try {
    const fd = fs.openSync(file, 'r');
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

function uidOf(pid: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1] ?? -1);
  } catch {
    return -1;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function killHard(pid: number, startTime: string): void {
  if (isAlive(pid, startTime)) signal(pid, 'SIGKILL');
}

/** SIGTERM, wait up to 3 s, then SIGKILL and wait up to 2 s. Only signals the process with that start time. */
export async function terminate(pid: number, startTime: string): Promise<boolean> {
  const gone = () => !isAlive(pid, startTime);
  if (gone()) return true;
  signal(pid, 'SIGTERM');
  if (await waitUntil(gone, 3000, 5)) return true;
  killHard(pid, startTime);
  return waitUntil(gone, 2000, 5);
}
