import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';

/**
 * Where a VM's runtime files live. `run/<id>/` belongs to the server (0711: QEMU users may pass
 * through it, not write in it) and holds what the server writes: qemu.log and serial.log (opened
 * by the server, handed to QEMU as descriptors), the record of lent media, and hard links to QEMU's
 * two sockets, made while QEMU is still paused before its first guest instruction and the only
 * paths the server connects to. `run/<id>/qemu/` belongs to the VM's QEMU user (0700), is made
 * afresh on every start and removed when QEMU exits: QEMU creates its QMP and VNC sockets and its
 * pid file there. The server never writes in it and reads only the pid file, without following a
 * symlink.
 */
export function runPaths(runDir: string) {
  const qemuDir = path.join(runDir, 'qemu');
  return {
    dir: runDir,
    qemuDir,
    /** QEMU's own socket paths (in the QEMU user's directory). */
    qemuQmpSocket: path.join(qemuDir, 'qmp.sock'),
    qemuVncSocket: path.join(qemuDir, 'vnc.sock'),
    qemuSerialSocket: path.join(qemuDir, 'serial.sock'), // serial console (issue 14)
    qemuAgentSocket: path.join(qemuDir, 'qga.sock'), // the guest agent (issue 14)
    pidFile: path.join(qemuDir, 'qemu.pid'),
    /** The server's links to them (in its own directory). */
    qmpSocket: path.join(runDir, 'qmp.sock'),
    vncSocket: path.join(runDir, 'vnc.sock'),
    serialSocket: path.join(runDir, 'serial.sock'), // serial console (issue 14)
    agentSocket: path.join(runDir, 'qga.sock'), // the guest agent (issue 14)
    serialLog: path.join(runDir, 'serial.log'),
    log: path.join(runDir, 'qemu.log'),
    owners: path.join(runDir, 'owners.json'),
  };
}

export type RunPaths = ReturnType<typeof runPaths>;

export const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_TRUNC, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/**
 * Removes a directory someone else may own (a QEMU user's) without following anything its owner
 * planted: it is taken over first (owner root, 0700, through a descriptor opened without following
 * a symlink), so its old owner can no longer add or swap entries by path, then removed. A symlink or
 * file in its place is just unlinked. Its parent must be a directory only the server writes.
 */
export function removeForeignDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ELOOP' || code === 'ENOTDIR') return void fs.rmSync(dir, { force: true });
    throw err;
  }
  try {
    fs.fchownSync(fd, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

const SERVER_FILES = new Set(['qemu.log', 'serial.log', 'owners.json']);

/**
 * Clears what is not the server's in its own `run/<id>/` (before a start): every entry that is not
 * one of its files as a regular file of the server's user with a single link (a serial.log an
 * older version let QEMU create, a symlink planted under the old layout, an old socket or pid file,
 * anything unknown) is unlinked without following it; a directory in its way is removed as a foreign
 * one. `qemu/` is left to the caller, which makes it afresh anyway.
 */
export function clearServerDir(dir: string): void {
  const me = process.getuid?.() ?? 0;
  for (const name of fs.readdirSync(dir)) {
    if (name === 'qemu') continue;
    const file = path.join(dir, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch {
      continue;
    }
    if (SERVER_FILES.has(name) && st.isFile() && st.uid === me && st.nlink === 1) continue;
    if (st.isDirectory()) removeForeignDir(file);
    else fs.rmSync(file, { force: true });
  }
}

/**
 * Makes sure `run/<id>/` is the server's own directory. One that is not (another owner, writable by
 * others, a symlink: e.g. left by an older version that gave the whole run dir to the QEMU user) is
 * moved aside and removed, and a new one is made.
 */
export function ensureServerDir(dir: string): void {
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(dir);
  } catch {
    /* missing */
  }
  const mine = st && st.isDirectory() && st.uid === (process.getuid?.() ?? 0) && (st.mode & 0o022) === 0;
  if (st && !mine) {
    const aside = path.join(path.dirname(dir), `.old-${path.basename(dir)}-${process.pid}-${Date.now()}`);
    fs.renameSync(dir, aside);
    removeForeignDir(aside);
  }
  if (!mine) fs.mkdirSync(dir, { mode: 0o711 });
  fs.chmodSync(dir, 0o711);
}

/** Opens a file the server writes in its own run dir: never through a symlink, always a regular file of ours. */
export function openOwnFile(file: string, flags: number): number {
  const fd = fs.openSync(file, flags | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.uid !== (process.getuid?.() ?? 0) || st.nlink !== 1) {
    fs.closeSync(fd);
    throw new AppError('QEMU_START_FAILED', `Cannot start: ${file} is not a file of the server`);
  }
  return fd;
}

/** A failure with the run dir's files, as the start's answer: a clear 422, never a bare 500. */
export function runDirFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as NodeJS.ErrnoException;
  return new AppError('QEMU_START_FAILED', `Cannot prepare the VM's run directory: ${e.code ?? ''} ${e.path ?? ''}`.trim(), {
    cause: err,
  });
}
