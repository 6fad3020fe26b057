import fs from 'node:fs';

/**
 * Metrics (issue 14): the few /proc facts the sampler reads, as pure parsers (unit-tested on
 * fixed text) plus thin readers. Everything read is bounded: /proc files of a process are small.
 */

/** Linux reports process CPU times in USER_HZ ticks, 100 a second on every architecture it runs on. */
export const USER_HZ = 100;

/** utime + stime (fields 14 and 15) and the start time (field 22) of a /proc/<pid>/stat line. */
export function parseProcStat(text: string): { cpuTicks: number; startTime: string } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // comm (field 2) may hold spaces and parentheses: fields counted after the last ')'; rest[0] is field 3.
  const rest = text.slice(close + 2).trim().split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const startTime = rest[19];
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime) || utime < 0 || stime < 0 || startTime === undefined || !/^\d+$/.test(startTime)) return null;
  return { cpuTicks: utime + stime, startTime };
}

/** VmRSS of /proc/<pid>/status, in bytes (null when absent, e.g. a zombie). */
export function parseStatusRss(text: string): number | null {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** The host's aggregate `cpu` line of /proc/stat: busy and total ticks since boot. */
export function parseHostCpu(text: string): { busy: number; total: number } | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 4 || v.some((n) => !Number.isFinite(n) || n < 0)) return null;
  // user nice system idle iowait irq softirq steal guest guest_nice: guest times are already in user/nice.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** MemTotal and MemAvailable of /proc/meminfo, bytes. */
export function parseMeminfo(text: string): { totalBytes: number; availableBytes: number } | null {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const totalBytes = field('MemTotal');
  const availableBytes = field('MemAvailable') ?? field('MemFree');
  return totalBytes === null || availableBytes === null ? null : { totalBytes, availableBytes };
}

function readSmall(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').slice(0, 64 * 1024);
  } catch {
    return null;
  }
}

/** CPU seconds and RSS of the process `pid` if it is still the one started at `startTime`; else null. */
export function readProcessUsage(pid: number, startTime: string): { cpuSeconds: number; rssBytes: number } | null {
  const stat = readSmall(`/proc/${pid}/stat`);
  const parsed = stat === null ? null : parseProcStat(stat);
  if (!parsed || parsed.startTime !== startTime) return null;
  const status = readSmall(`/proc/${pid}/status`);
  const rss = status === null ? null : parseStatusRss(status);
  if (rss === null) return null;
  return { cpuSeconds: parsed.cpuTicks / USER_HZ, rssBytes: rss };
}

export function readHostCpu(): { busy: number; total: number } | null {
  const t = readSmall('/proc/stat');
  return t === null ? null : parseHostCpu(t);
}

export function readMeminfo(): { totalBytes: number; availableBytes: number } | null {
  const t = readSmall('/proc/meminfo');
  return t === null ? null : parseMeminfo(t);
}
