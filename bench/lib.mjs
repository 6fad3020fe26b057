// Small helpers shared by the benchmark: statistics, the kept-alive HTTP client, /proc readers.
// Ports, the process scan, waiting and the HTTP client itself are the shared test kit's (test/kit/).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { request as kitRequest, poll, sleep } from '../test/kit/index.mjs';

export { alive, freePort, nowMs, portFree, sleep } from '../test/kit/index.mjs';

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summary(values) {
  return {
    n: values.length,
    min: Math.min(...values),
    p50: median(values),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: Math.max(...values),
  };
}

/** Rounds for display: 3 significant digits, no exponent for the sizes we print. */
export function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (typeof x !== 'number') return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 10 ** digits) return String(Math.round(x));
  return String(Number(x.toPrecision(digits)));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/**
 * One HTTP request to the server under test, on the bench's kept-alive connections. Resolves with
 * { status, headers, body (parsed JSON when possible), raw (Buffer), ms } and never rejects on HTTP
 * errors; rejects on network errors or after `timeoutMs`.
 */
export function request(base, method, path, body, { timeoutMs = 60_000 } = {}) {
  return kitRequest(base, method, path, body, { timeoutMs, agent });
}

/** Like request(), but throws unless the status is the expected one. */
export async function api(base, method, path, body, expect = 200, opts) {
  const r = await request(base, method, path, body, opts);
  if (r.status !== expect) {
    const msg = typeof r.body === 'object' && r.body ? r.body.error ?? JSON.stringify(r.body) : r.body;
    throw new Error(`${method} ${path} → ${r.status}: ${msg}`);
  }
  return r;
}

export function closeAgent() {
  agent.destroy();
}

/** Resident set size of a process in KiB (VmRSS from /proc/<pid>/status), or null. */
export function rssKiB(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Polls until `check()` is true; returns false after `timeoutMs`. */
export async function waitFor(check, timeoutMs, intervalMs = 1) {
  return Boolean(await poll(check, { timeoutMs, intervalMs }));
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order (settled). */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { ok: true, value: await fn(items[i], i) };
      } catch (err) {
        results[i] = { ok: false, error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Forks one of the bench/ helper servers. Resolves once it reported its port; `ask(msg)` sends an
 * IPC message and resolves with the next reply. The child exits when this process goes away.
 */
export function forkHelper(file, args = []) {
  return new Promise((resolve, reject) => {
    const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => reject(new Error(`${file} did not start`)), 10_000);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
    child.once('message', (m) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const ask = (msg) =>
        new Promise((res) => {
          child.once('message', res);
          child.send(msg);
        });
      const stop = () =>
        new Promise((res) => {
          if (child.exitCode !== null || child.signalCode !== null) return res();
          child.once('exit', () => res());
          child.kill('SIGTERM');
        });
      resolve({ child, pid: child.pid, port: m.port, ask, stop });
    });
  });
}

/** CPU time (user + system) of a process in clock ticks (1/100 s here), or null if gone. */
export function cpuTicks(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

/**
 * Waits until the given processes together use less than `maxCores` of CPU in `quietWindows`
 * consecutive 1 s windows (freshly started guests spend their first seconds in firmware and PXE),
 * at most `timeoutMs`. Returns { seconds, cores: per-window usage }.
 */
export async function settle(pids, { maxCores = 0.15, quietWindows = 2, timeoutMs = 40_000 } = {}) {
  const t0 = Date.now();
  const sum = () => pids.reduce((a, p) => a + (cpuTicks(p) ?? 0), 0);
  let prev = sum();
  let quiet = 0;
  const cores = [];
  while (Date.now() - t0 < timeoutMs && quiet < quietWindows) {
    await sleep(1000);
    const now = sum();
    cores.push((now - prev) / 100);
    quiet = (now - prev) / 100 < maxCores ? quiet + 1 : 0;
    prev = now;
  }
  return { seconds: (Date.now() - t0) / 1000, cores };
}
