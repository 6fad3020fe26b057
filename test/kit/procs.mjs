// @ts-check
// Processes by /proc: whether a pid is alive, which processes mention a string on their command
// line, and the QEMU processes that use a data dir (VMs outlive the server by design, so whoever
// starts a server must kill those by pid when done).
import fs from 'node:fs';
import path from 'node:path';
import { poll } from './wait.mjs';

/**
 * True while the process exists and is not a zombie.
 * @param {number} pid
 * @returns {boolean}
 */
export function alive(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/**
 * Processes whose command line contains `needle` (never this process), with their argv.
 * @param {string} needle
 * @returns {Array<{ pid: number, argv: string[] }>}
 */
export function pidsWithCmdline(needle) {
  /** @type {Array<{ pid: number, argv: string[] }>} */
  const out = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const pid = Number(ent);
    if (pid === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(needle)) out.push({ pid, argv: cmd.split('\0').filter(Boolean) });
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Pids of live QEMU processes (program name qemu-system-*) whose command line mentions `dir`.
 * @param {string} dir
 * @returns {number[]}
 */
export function qemuPidsOf(dir) {
  return pidsWithCmdline(dir)
    .filter((p) => path.basename(p.argv[0] ?? '').startsWith('qemu-system') && alive(p.pid))
    .map((p) => p.pid);
}

/**
 * @param {number} pid
 * @param {NodeJS.Signals} signal
 */
function signal(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

/**
 * SIGKILLs every QEMU whose command line mentions `dir`; returns how many there were.
 * @param {string} dir
 * @returns {number}
 */
export function killQemusOf(dir) {
  const pids = qemuPidsOf(dir);
  for (const pid of pids) signal(pid, 'SIGKILL');
  return pids.length;
}

/**
 * Sends SIGTERM to every QEMU whose command line mentions `dir`, and SIGKILL to those still alive
 * after `graceMs`; resolves with their pids once none is alive.
 * @param {string} dir
 * @param {{ graceMs?: number, onKill?: (pid: number) => void }} [opts]
 * @returns {Promise<number[]>}
 */
export async function stopQemusOf(dir, { graceMs = 3000, onKill } = {}) {
  const pids = qemuPidsOf(dir);
  for (const pid of pids) {
    onKill?.(pid);
    signal(pid, 'SIGTERM');
  }
  if (pids.length && !(await poll(() => pids.every((p) => !alive(p)), { timeoutMs: graceMs, intervalMs: 20 }))) {
    for (const pid of pids) if (alive(pid)) signal(pid, 'SIGKILL');
    await poll(() => pids.every((p) => !alive(p)), { timeoutMs: 5000, intervalMs: 20 });
  }
  return pids;
}
