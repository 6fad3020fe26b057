import fs from 'node:fs';
import { waitUntil } from './time.js';

/**
 * Facts about a host process from /proc. The start time (field 22 of /proc/<pid>/stat, in clock
 * ticks since boot) together with the pid identifies a process for good: a reused pid has another.
 */
interface ProcStat {
  state: string;
  startTime: string;
}

export function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const startTime = rest[19];
  if (state === undefined || startTime === undefined) return null;
  return { state, startTime };
}

/** True while the process exists, is not a zombie, and (if given) has the same start time. */
export function isAlive(pid: number, startTime?: string | null): boolean {
  const st = readStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime ? st.startTime === startTime : true;
}

export function readCmdline(pid: number): string[] | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s, i, a) => i < a.length - 1 || s !== '');
  } catch {
    return null;
  }
}

export function cmdlineOf(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

export function uidOf(pid: number): number {
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

export function killHard(pid: number, startTime: string): void {
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

/** True if any process (any state but zombie) has `uid` as its real, effective or saved uid. */
export function uidHasProcesses(uid: number): boolean {
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${ent}/status`, 'utf8');
    } catch {
      continue;
    }
    if (/^State:\s+Z/m.test(status)) continue;
    const uids = status.match(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m);
    if (uids && uids.slice(1, 4).some((u) => Number(u) === uid)) return true;
  }
  return false;
}
