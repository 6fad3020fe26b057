import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { shellQuote } from '../lib/exec.js';
import { waitUntil } from '../lib/time.js';
import { buildArgv, type ArgvInput } from './argv.js';
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

/** Where a VM's runtime files live. */
export function runPaths(runDir: string) {
  return {
    dir: runDir,
    qmpSocket: path.join(runDir, 'qmp.sock'),
    pidFile: path.join(runDir, 'qemu.pid'),
    serialLog: path.join(runDir, 'serial.log'),
  };
}

/** Turns QEMU's stderr into one readable sentence, without the program-name prefix. */
export function qemuErrorMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^qemu-system-[\w-]+:\s*/, '').trim())
    .filter((l) => l !== '');
  return lines.join('; ') || 'QEMU exited without a message';
}

export class Supervisor {
  private readonly instances = new Map<string, Instance>();

  constructor(
    private readonly runRoot: string,
    private readonly hooks: SupervisorHooks,
    private readonly log: Logger,
  ) {}

  get(vmId: string): Instance | undefined {
    return this.instances.get(vmId);
  }

  get count(): number {
    return this.instances.size;
  }

  runDir(vmId: string): string {
    return path.join(this.runRoot, vmId);
  }

  /**
   * Starts QEMU detached (-daemonize: QEMU forks, calls setsid, and its first process exits only
   * once the machine is initialised and the QMP socket listens, or with QEMU's own error message).
   * Resolves once QMP answers query-status; a state other than running is a failed start.
   */
  async start(input: StartInput): Promise<StartResult> {
    const paths = runPaths(this.runDir(input.vmId));
    if (Buffer.byteLength(paths.qmpSocket) > UNIX_PATH_MAX) {
      throw new AppError(500, 'QEMU_START_FAILED', `QMP socket path is too long for a unix socket: ${paths.qmpSocket}`);
    }
    fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    for (const f of [paths.qmpSocket, paths.pidFile]) fs.rmSync(f, { force: true });

    const argv = buildArgv({ ...input, qmpSocket: paths.qmpSocket, pidFile: paths.pidFile, serialLog: paths.serialLog });
    const command = shellQuote(argv);
    const [file, ...args] = argv as [string, ...string[]];
    const { code, stderr } = await spawnDaemon(file, args);
    if (code !== 0) {
      throw new AppError(422, 'QEMU_START_FAILED', `QEMU failed to start: ${qemuErrorMessage(stderr)}`);
    }

    const pid = Number.parseInt(fs.readFileSync(paths.pidFile, 'utf8').trim(), 10);
    const stat = Number.isInteger(pid) ? readStat(pid) : null;
    if (!stat) throw new AppError(500, 'QEMU_START_FAILED', 'QEMU started but its process is already gone');

    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 5000 });
    } catch (err) {
      killHard(pid, stat.startTime);
      throw new AppError(500, 'QEMU_START_FAILED', 'QEMU started but its QMP socket does not answer', { cause: err });
    }
    const instance = this.track(input.vmId, pid, stat.startTime, qmp);
    const { status } = await qmp.execute<{ status: string }>('query-status');
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
    this.track(vmId, pid, stat.startTime, qmp);
    const { status } = await qmp.execute<{ status: string }>('query-status');
    return status;
  }

  /** Power-off: QMP quit, then SIGTERM, then SIGKILL, each with a short deadline. Resolves once QEMU is gone. */
  async stop(vmId: string): Promise<void> {
    const inst = this.instances.get(vmId);
    if (!inst) return;
    const gone = () => !isAlive(inst.pid, inst.pidStart);
    if (!inst.qmp.closed) {
      inst.qmp.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
      await inst.qmp.waitClosed(3000);
    }
    if (!(await waitUntil(gone, 1000, 2))) {
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

  private track(vmId: string, pid: number, pidStart: string, qmp: QmpClient): Instance {
    const inst: Instance = { vmId, pid, pidStart, qmp };
    this.instances.set(vmId, inst);
    qmp.on('event', (ev: QmpEvent) => this.hooks.onEvent(vmId, ev));
    qmp.once('close', () => void this.handleClose(inst));
    return inst;
  }

  /** The QMP connection closed: QEMU is exiting. Confirm the process is gone, then report the exit. */
  private async handleClose(inst: Instance): Promise<void> {
    const exited = await waitUntil(() => !isAlive(inst.pid, inst.pidStart), 3000, 2);
    if (!exited) {
      this.log.warn({ vmId: inst.vmId, pid: inst.pid }, 'QMP closed but QEMU still runs; terminating it');
      await terminate(inst.pid, inst.pidStart);
    }
    if (this.instances.get(inst.vmId) === inst) this.instances.delete(inst.vmId);
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

/** Runs `qemu ... -daemonize` and waits for its first process to exit; collects stderr (bounded). */
function spawnDaemon(file: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (stderr.length < 16384) stderr += s;
    });
    child.once('error', (err) =>
      reject(new AppError(500, 'QEMU_START_FAILED', `cannot run ${file}: ${err.message}`, { cause: err })),
    );
    child.once('close', (code) => resolve({ code, stderr }));
  });
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
