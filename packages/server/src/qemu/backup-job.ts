import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { BackupDiskState, LiveBackup } from '../runtime/port.js';
import type { QemuIdentity } from './identity.js';
import type { QmpEvent } from './qmp/client.js';
import type { QmpCommands } from './qmp/commands.js';
import { qmpCall } from './qmp/errors.js';
import { removeForeignDir } from './rundir.js';

/**
 * Live backups (issue 13, engine) in QEMU. Each new target file (a qcow2 the server created) is
 * served by a root `qemu-nbd` as raw bytes (raw parses nothing, opens nothing else) from the
 * descriptor the server opened, on a unix socket in `run/<id>/bk-<8 of the backup id>/` (root's, 0711)
 * owned by the VM's QEMU user and mode 0600: only that QEMU (and root) can connect, and QEMU gains
 * access to nothing but that one file's bytes. QEMU opens it as `qcow2` over `nbd` with
 * `backing: null` (it never follows the parent's name written in an incremental's header). Every
 * qemu-nbd dies with the server (parent-death signal); the jobs, nodes and socket directory a
 * crash leaves are removed by `recoverLiveBackups` at the next start. Names: jobs
 * `qm-backup-<backup id>-<disk>`, target nodes `qmb<disk>-<20 hex of the id>` (node names are at
 * most 31 characters).
 */

export const JOB_PREFIX = 'qm-backup-';
const NODE_PREFIX = 'qmb';
/** `run/<id>/bk-<first 8 of the backup id>/d<disk>.sock`: short, a unix socket path has at most 107 bytes. */
const SOCKET_DIR_PREFIX = 'bk-';
/** Progress is read from query-jobs this often while the copy runs. */
const PROGRESS_EVERY_MS = 500;

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f)) ?? null;

export interface LiveBackupDeps {
  commands: QmpCommands;
  runDir: string;
  identity: QemuIdentity | null;
  nbdBinary: string;
  log: Logger;
}

function nodeName(id: string, index: number): string {
  return `${NODE_PREFIX}${index}-${id.replace(/-/g, '').slice(0, 20)}`;
}

/** Disk nodes (`disk<i>`, argv.ts) with their size and dirty bitmaps. */
export async function backupDiskStates(commands: QmpCommands): Promise<BackupDiskState[]> {
  const nodes = await commands.queryNamedBlockNodes();
  const out: BackupDiskState[] = [];
  for (const n of nodes) {
    const m = /^disk(\d+)$/.exec(n['node-name']);
    if (!m) continue;
    out.push({
      index: Number(m[1]),
      virtualSize: n.image?.['virtual-size'] ?? 0,
      bitmaps: (n['dirty-bitmaps'] ?? []).map((b) => ({ name: b.name, persistent: b.persistent === true, consistent: b.inconsistent !== true })),
    });
  }
  return out.sort((a, b) => a.index - b.index);
}

export async function runLiveBackup(deps: LiveBackupDeps, job: LiveBackup): Promise<void> {
  const { commands, log } = deps;
  const dir = path.join(deps.runDir, `${SOCKET_DIR_PREFIX}${job.id.slice(0, 8)}`);
  const servers: Array<{ child: ChildProcess; exit: Promise<void>; fd: number }> = [];
  const added: string[] = [];
  const jobIds = job.disks.map((d) => `${JOB_PREFIX}${job.id}-${d.index}`);
  let started = false;
  try {
    fs.mkdirSync(dir, { mode: 0o711 });
    fs.chmodSync(dir, 0o711);
    const states = await backupDiskStates(commands);
    for (const d of job.disks) {
      const fd = fs.openSync(d.file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
      // An NBD export has a fixed size, and QEMU grows a qcow2 by writing past its end: the new
      // file gets a sparse tail with room for every cluster and its tables (holes cost nothing;
      // qcow2 ignores what lies past the clusters it references).
      const virtualSize = states.find((s) => s.index === d.index)?.virtualSize ?? 0;
      const room = virtualSize + Math.ceil(virtualSize / 256) + (16 << 20);
      if (fs.fstatSync(fd).size < room) fs.ftruncateSync(fd, room);
      const sock = path.join(dir, `d${d.index}.sock`);
      const server = serve(deps.nbdBinary, fd, sock);
      servers.push(server);
      await socketUp(sock, server.child, job.signal);
      if (deps.identity) fs.lchownSync(sock, deps.identity.uid, deps.identity.gid);
      fs.chmodSync(sock, 0o600);
      const node = nodeName(job.id, d.index);
      await qmp('the backup target', () => commands.blockdevAddQcow2OverNbd(node, sock));
      added.push(node);
    }
    if (job.signal.aborted) throw new Error('cancelled');

    // Wait for every job to conclude: the listener is set before the start, so none is missed.
    const pending = new Set(jobIds);
    let stopListening = () => {};
    let stopClose = () => {};
    const concluded = new Promise<void>((resolve, reject) => {
      stopListening = commands.onEvent((ev: QmpEvent) => {
        const id = ev.data?.id;
        if (ev.event === 'JOB_STATUS_CHANGE' && typeof id === 'string' && pending.has(id) && (ev.data?.status === 'concluded' || ev.data?.status === 'null')) {
          pending.delete(id);
          if (pending.size === 0) resolve();
        }
      });
      stopClose = commands.onClose(() => reject(new AppError('QEMU_UNREACHABLE', 'QEMU went away during the backup')));
    });
    concluded.catch(() => undefined);
    const cancel = () => {
      for (const id of jobIds) commands.jobCancel(id).catch(() => undefined);
    };
    job.signal.addEventListener('abort', cancel, { once: true });
    const timer = setInterval(() => {
      commands
        .queryJobs()
        .then((jobs) => {
          const mine = jobs.filter((j) => jobIds.includes(j.id));
          job.progress(
            mine.reduce((n, j) => n + j['current-progress'], 0),
            mine.reduce((n, j) => n + j['total-progress'], 0),
          );
        })
        .catch(() => undefined);
    }, PROGRESS_EVERY_MS);
    try {
      await job.pointInTime?.before();
      try {
        await qmp('the backup', () =>
          commands.backupTransaction(
            job.disks.map((d, i) => ({ device: `disk${d.index}`, target: added[i]!, jobId: jobIds[i]!, bitmap: d.bitmap, newBitmap: d.newBitmap })),
            job.speedLimit,
          ),
        );
      } finally {
        await job.pointInTime?.after();
      }
      started = true;
      await concluded;
    } finally {
      clearInterval(timer);
      job.signal.removeEventListener('abort', cancel);
      stopListening();
      stopClose();
    }
    const jobs = (await qmp('the job query', () => commands.queryJobs())).filter((j) => jobIds.includes(j.id));
    const errors = jobs.map((j) => j.error).filter((e): e is string => typeof e === 'string');
    const total = jobs.reduce((n, j) => n + j['total-progress'], 0);
    for (const j of jobs) await commands.jobDismiss(j.id).catch(() => undefined);
    if (job.signal.aborted) throw new Error('cancelled');
    if (errors.length) {
      log.warn({ backup: job.id, errors }, 'backup job failed');
      throw new AppError('QEMU_ERROR', `The backup job failed: ${[...new Set(errors)].join('; ')}`);
    }
    job.progress(total, total);
  } finally {
    if (started) {
      // Jobs that are still there (a failure on our side while they ran) are cancelled first.
      const left = (await commands.queryJobs().catch(() => [])).filter((j) => jobIds.includes(j.id));
      for (const j of left) await commands.jobCancel(j.id).catch(() => undefined);
      for (const j of left) await waitGone(commands, j.id);
    }
    for (const node of added) await commands.blockdevDel(node).catch((err: unknown) => log.warn({ node, err: String(err) }, 'could not remove a backup target node'));
    for (const s of servers) {
      s.child.kill('SIGTERM');
      await s.exit;
      try {
        fs.fsyncSync(s.fd);
      } finally {
        fs.closeSync(s.fd);
      }
    }
    removeForeignDir(dir);
  }
}

/**
 * At server start, for an adopted QEMU: backup jobs a crash left (`qm-backup-*`) are cancelled and
 * dismissed, their target nodes removed, and the socket directories of the run dir deleted. The VM
 * keeps running. Returns how many jobs were found.
 */
export async function recoverLiveBackups(commands: QmpCommands, runDir: string, log: Logger): Promise<number> {
  const jobs = (await commands.queryJobs()).filter((j) => j.id.startsWith(JOB_PREFIX));
  for (const j of jobs) {
    if (j.status !== 'concluded' && j.status !== 'null') await commands.jobCancel(j.id).catch(() => undefined);
  }
  for (const j of jobs) await waitGone(commands, j.id);
  const nodes = (await commands.queryNamedBlockNodes()).filter((n) => new RegExp(`^${NODE_PREFIX}\\d+-[0-9a-f]{20}$`).test(n['node-name']));
  for (const n of nodes) await commands.blockdevDel(n['node-name']).catch((err: unknown) => log.warn({ node: n['node-name'], err: String(err) }, 'could not remove a backup target node'));
  let names: string[] = [];
  try {
    names = fs.readdirSync(runDir);
  } catch {
    // no run dir
  }
  for (const name of names) if (name.startsWith(SOCKET_DIR_PREFIX)) removeForeignDir(path.join(runDir, name));
  return jobs.length;
}

/** Waits until the job has concluded, then dismisses it (a cancel takes a moment to land). */
async function waitGone(commands: QmpCommands, id: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const j = (await commands.queryJobs().catch(() => [])).find((x) => x.id === id);
    if (!j) return;
    if (j.status === 'concluded') {
      await commands.jobDismiss(id).catch(() => undefined);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function serve(binary: string, fd: number, sock: string): { child: ChildProcess; exit: Promise<void>; fd: number } {
  const args = ['--shared=1', '--image-opts', '--socket', sock, 'driver=raw,file.driver=file,file.filename=/proc/self/fd/3,file.locking=off'];
  const [cmd, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'ignore', fd] });
  const exit = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
  return { child, exit, fd };
}

async function socketUp(sock: string, child: ChildProcess, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  while (!signal.aborted && Date.now() - started < 10_000 && child.exitCode === null && child.signalCode === null) {
    try {
      if (fs.lstatSync(sock).isSocket() && listening(sock)) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(signal.aborted ? 'cancelled' : 'qemu-nbd did not serve the backup target');
}

/**
 * Whether the unix socket at `sock` listens yet: qemu-nbd binds (the file appears) before it
 * listens, and QEMU connecting in between is refused (seen in the backup bench). Where
 * /proc/net/unix cannot be read, the file alone counts.
 */
function listening(sock: string): boolean {
  let table: string;
  try {
    table = fs.readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return true;
  }
  return table.split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[7] === sock && f[3] === '00010000';
  });
}

const qmp = qmpCall;
