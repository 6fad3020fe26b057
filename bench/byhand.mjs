// The "by hand" baseline for start/stop: the exact QEMU command line the server ran, re-run with
// its runtime files (pidfile, QMP socket, serial log) moved to another directory and started the
// same way the server does it (`-daemonize` when the command has it, else a detached child in its
// own session with output to a log file, as the same user), then driven over QMP with bench/qmp.mjs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { alive, nowMs, sleep, waitFor } from './lib.mjs';
import { Qmp } from './qmp.mjs';
import { shellSplit } from './shell.mjs';

/**
 * Turns the server's shell-quoted `command` into an argv whose runtime paths (everything under the
 * VM's run directory) point into `dir` instead.
 */
export function handArgv(command, runDir, dir) {
  const argv = shellSplit(command).map((a) => a.split(runDir).join(dir));
  const pidIdx = argv.indexOf('-pidfile');
  const pidFile = pidIdx >= 0 ? argv[pidIdx + 1] : null;
  const qmpArg = argv.find((a) => /^socket,(?:.*,)?id=qmp(?:,|$)/.test(a));
  const qmpSocket = qmpArg ? /(?:^|,)path=((?:[^,]|,,)+)/.exec(qmpArg)?.[1]?.replace(/,,/g, ',') : null;
  if (!qmpSocket?.startsWith(dir) || (pidFile && !pidFile.startsWith(dir))) {
    throw new Error(`could not relocate the runtime paths of: ${command}`);
  }
  // The server hands QEMU its serial log (and images) as inherited descriptors (-add-fd fd=N): by
  // hand, the serial log is a file in `dir`; a command with images is not reproduced.
  const fds = argv.filter((a, i) => argv[i - 1] === '-add-fd').map((a) => Number(/^fd=(\d+)/.exec(a)?.[1]));
  if (fds.length > 1) throw new Error(`the by-hand baseline passes only the serial log descriptor: ${command}`);
  return { argv, pidFile, qmpSocket, daemonize: argv.includes('-daemonize'), paused: argv.includes('-S'), fds, dir };
}

/** The uid/gid a running process has (to run the baseline QEMU as the same user). */
export function processIds(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)[1]), gid: Number(/^Gid:\s+(\d+)/m.exec(status)[1]) };
}

/** Prepares `spec.dir` for a QEMU running as `ids` (the server's QEMU user, if any). */
export function prepareDir(spec, ids) {
  fs.mkdirSync(spec.dir, { recursive: true, mode: 0o700 });
  // QEMU's own files (sockets, pid file) may live in a subdirectory of the run dir.
  const own = [spec.dir, ...new Set([spec.qmpSocket, spec.pidFile].filter(Boolean).map((f) => path.dirname(f)))];
  for (const d of own) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  if (ids && process.getuid?.() === 0 && ids.uid !== 0) for (const d of own) fs.chownSync(d, ids.uid, ids.gid);
  spec.ids = ids;
}

function runDaemonize(argv, ids) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
      ...(ids && ids.uid !== process.getuid?.() ? ids : {}),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s) => {
      if (stderr.length < 16384) stderr += s;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

async function connectRetry(socket, exited, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited()) throw new Error('QEMU by hand exited before QMP answered');
    if (fs.existsSync(socket)) {
      try {
        return await Qmp.connect(socket, Math.max(1000, deadline - Date.now()));
      } catch (err) {
        if (!/ECONNREFUSED|ENOENT/.test(err.message) || Date.now() > deadline) throw err;
      }
    }
    if (Date.now() > deadline) throw new Error(`QMP socket ${socket} did not appear`);
    await sleep(1);
  }
}

/** Starts QEMU until QMP says running; returns { ms, pid, qmp }. */
export async function handStart(spec) {
  const { argv, pidFile, qmpSocket, daemonize, paused, fds, ids, dir } = spec;
  for (const f of [pidFile, qmpSocket]) if (f) fs.rmSync(f, { force: true });
  const t0 = nowMs();
  let pid;
  let exited = () => false;
  if (daemonize) {
    const { code, stderr } = await runDaemonize(argv, ids);
    if (code !== 0) throw new Error(`QEMU by hand failed (${code}): ${stderr.trim()}`);
    pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
  } else {
    const logFd = fs.openSync(path.join(dir, 'qemu.log'), 'a', 0o600);
    const serialFd = fds.length ? fs.openSync(path.join(dir, 'serial.log'), 'w', 0o600) : null;
    let gone = false;
    try {
      const extra = [];
      if (serialFd !== null) extra[fds[0] - 3] = serialFd;
      const child = spawn(argv[0], argv.slice(1), {
        detached: true,
        stdio: ['ignore', logFd, logFd, ...Array.from(extra, (fd) => fd ?? 'ignore')],
        ...(ids && ids.uid !== process.getuid?.() ? ids : {}),
      });
      child.once('exit', () => {
        gone = true;
      });
      child.once('error', () => {
        gone = true;
      });
      child.unref();
      pid = child.pid;
    } finally {
      fs.closeSync(logFd);
      if (serialFd !== null) fs.closeSync(serialFd);
    }
    exited = () => gone;
  }
  const qmp = await connectRetry(qmpSocket, exited, 60_000);
  if (paused) await qmp.execute('cont'); // the server starts QEMU paused too, then continues it
  const { status } = await qmp.execute('query-status');
  const ms = nowMs() - t0;
  if (status !== 'running') {
    qmp.destroy();
    throw new Error(`QEMU by hand is ${status}, not running`);
  }
  return { ms, pid, qmp };
}

/** QMP quit, then wait until the QMP socket closed and the process is gone; returns ms. */
export async function handStop({ pid, qmp }) {
  const t0 = nowMs();
  qmp.execute('quit').catch(() => {});
  await qmp.closed;
  if (!(await waitFor(() => !alive(pid), 10_000, 1))) throw new Error(`QEMU ${pid} ignored quit`);
  return nowMs() - t0;
}
