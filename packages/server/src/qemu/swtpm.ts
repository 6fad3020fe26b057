import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { isAlive, readCmdline, readStat, terminate } from '../lib/proc.js';
import { delay } from '../lib/time.js';
import type { QemuIdentity } from './identity.js';
import { O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_TRUNC, O_WRONLY, openOwnFile } from './rundir.js';

/**
 * A VM's TPM 2.0 (issue 12): one `swtpm socket --tpm2` per VM, its state in `<vm state>/tpm/`,
 * started before QEMU as the VM's unprivileged user in its own session, reached by QEMU on a
 * control socket in the QEMU user's run directory. `--terminate` ends it when QEMU's connection
 * drops; the supervisor also stops it after QEMU exits. Its pid and start time are recorded in the
 * server's run dir, so a server that restarts adopts it instead of starting another.
 */
export interface SwtpmProcess {
  pid: number;
  pidStart: string;
}

interface Record {
  pid: number;
  pidStart: string;
  socket: string;
}

const me = () => ({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });

/**
 * Gives the TPM state dir and its files to `owner` (by descriptor, never following a symlink).
 * Anything that is not a plain file with one link is removed: nothing planted in it is ever chowned.
 */
export function handTpmState(dir: string, owner: { uid: number; gid: number }): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const dfd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    // First the directory: from now on its old owner cannot add or swap entries.
    fs.fchownSync(dfd, me().uid, me().gid);
    fs.fchmodSync(dfd, 0o700);
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name);
      const st = fs.lstatSync(file);
      if (!st.isFile() || st.nlink !== 1) {
        fs.rmSync(file, { recursive: true, force: true });
        continue;
      }
      const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        fs.fchownSync(fd, owner.uid, owner.gid);
      } finally {
        fs.closeSync(fd);
      }
    }
    fs.fchownSync(dfd, owner.uid, owner.gid);
  } finally {
    fs.closeSync(dfd);
  }
}

/** Takes the TPM state back for the server after the VM stopped (its next user may be another). */
export function reclaimTpmState(dir: string): void {
  if (!fs.existsSync(dir)) return;
  handTpmState(dir, me());
}

export function swtpmArgs(stateDir: string, socket: string): string[] {
  // QemuOpts-style values: a comma in a path is doubled.
  const esc = (v: string) => v.replace(/,/g, ',,');
  return ['socket', '--tpm2', '--tpmstate', `dir=${esc(stateDir)},mode=0600`, '--ctrl', `type=unixio,path=${esc(socket)},mode=0600`, '--terminate'];
}

/**
 * Starts the VM's swtpm and waits for its control socket. `identity` null: as the server's user.
 * Resolves with its process once the socket exists; a swtpm that exits first is QEMU_START_FAILED.
 */
export async function startSwtpm(opts: {
  binary: string;
  stateDir: string;
  socket: string;
  identity: QemuIdentity | null;
  logFile: string;
  recordFile: string;
}): Promise<SwtpmProcess> {
  const owner = opts.identity ? { uid: opts.identity.uid, gid: opts.identity.gid } : me();
  handTpmState(opts.stateDir, owner);
  fs.rmSync(opts.socket, { force: true });
  const logFd = openOwnFile(opts.logFile, O_WRONLY | O_APPEND);
  let exited: string | null = null;
  let child;
  try {
    child = spawn(opts.binary, swtpmArgs(opts.stateDir, opts.socket), {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      ...(opts.identity ? { uid: opts.identity.uid, gid: opts.identity.gid } : {}),
    });
  } finally {
    fs.closeSync(logFd);
  }
  child.once('error', (err) => (exited = `cannot run ${opts.binary}: ${err.message} (install the Debian package swtpm)`));
  child.once('exit', (code, sig) => (exited = sig ? `killed by ${sig}` : `exited with ${code}`));
  child.unref();
  const deadline = Date.now() + 10_000;
  while (exited === null && !fs.existsSync(opts.socket) && Date.now() < deadline) await delay(5);
  const pid = child.pid;
  const stat = pid ? readStat(pid) : null;
  if (exited !== null || !pid || !stat || !fs.existsSync(opts.socket)) {
    if (pid && stat) await terminate(pid, stat.startTime);
    throw new AppError('QEMU_START_FAILED', `The TPM emulator (swtpm) failed to start: ${exited ?? 'no control socket appeared'}`);
  }
  const proc = { pid, pidStart: stat.startTime };
  const fd = openOwnFile(opts.recordFile, O_WRONLY | O_TRUNC);
  try {
    fs.writeSync(fd, JSON.stringify({ ...proc, socket: opts.socket } satisfies Record));
  } finally {
    fs.closeSync(fd);
  }
  return proc;
}

/** The recorded swtpm of a VM when it still runs (same pid, start time and control socket). */
export function recordedSwtpm(recordFile: string): SwtpmProcess | null {
  let rec: Partial<Record>;
  try {
    const fd = fs.openSync(recordFile, O_RDONLY | O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== me().uid || st.size > 4096) return null;
      rec = JSON.parse(fs.readFileSync(fd, 'utf8')) as Partial<Record>;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  if (typeof rec.pid !== 'number' || typeof rec.pidStart !== 'string' || typeof rec.socket !== 'string') return null;
  if (!isAlive(rec.pid, rec.pidStart)) return null;
  const argv = readCmdline(rec.pid);
  if (!argv || path.basename(argv[0] ?? '') !== 'swtpm' || !argv.some((a) => a.startsWith(`type=unixio,path=${rec.socket!.replace(/,/g, ',,')},`))) return null;
  return { pid: rec.pid, pidStart: rec.pidStart };
}

/** Stops a VM's swtpm (if it still runs) and forgets its record. */
export async function stopSwtpm(proc: SwtpmProcess | null, recordFile: string): Promise<void> {
  if (proc) await terminate(proc.pid, proc.pidStart);
  fs.rmSync(recordFile, { force: true });
}
