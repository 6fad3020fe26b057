// A real QEMU Manager server for the browser tests: its own temp data dir with the test guest ISO,
// a free port, TCG. Teardown stops every VM through the API, then the server, then removes the dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTestGuestIso, READY_MARKER } from '../test/guest/index.js';
import { freePort } from '../test/integration/harness.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(repoRoot, 'packages/server/dist/main.js');
const WEB_INDEX = join(repoRoot, 'packages/web/dist/index.html');

export const TEST_ISO_NAME = 'testguest.iso';
export { READY_MARKER };

export interface E2EServer {
  url: string;
  dataDir: string;
  /** Server stdout+stderr so far (for failure messages). */
  log(): string;
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Resolves when the VM's serial log contains `marker` (the guest prints TESTGUEST_READY). */
  waitForSerial(vmId: string, marker: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment for the server, e.g. { AUTH: 'required', ADMIN_PASSWORD: '…' }. */
  env?: Record<string, string>;
  /** Admin password: the helper's own API calls then log in first. */
  password?: string;
}

export async function startServer(opts: StartOptions = {}): Promise<E2EServer> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` in ${repoRoot} first`);
  if (!existsSync(WEB_INDEX)) throw new Error(`${WEB_INDEX} is missing: run \`npm run build -w packages/web\` first`);
  const iso = await ensureTestGuestIso();
  const dataDir = await mkdtemp(join(tmpdir(), 'qm-test-e2e-'));
  await mkdir(join(dataDir, 'isos'), { recursive: true });
  await copyFile(iso, join(dataDir, 'isos', TEST_ISO_NAME));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;

  let output = '';
  const proc: ChildProcess = spawn(process.execPath, [MAIN], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, ACCEL: 'tcg', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const append = (b: Buffer) => {
    output = (output + b.toString()).slice(-100_000);
  };
  proc.stdout!.on('data', append);
  proc.stderr!.on('data', append);

  let cookie: string | undefined;
  async function login() {
    const r = await fetch(`${url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: opts.password }),
    });
    if (!r.ok) throw new Error(`login failed: HTTP ${r.status} ${await r.text()}`);
    cookie = r.headers.get('set-cookie')?.split(';')[0];
  }
  async function api<T>(method: string, path: string, body?: unknown) {
    if (opts.password && !cookie) await login();
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (cookie) headers.cookie = cookie;
    const r = await fetch(`${url}/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed as T };
  }

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await rm(dataDir, { recursive: true, force: true });
      throw new Error(`server exited with code ${proc.exitCode}:\n${output}`);
    }
    try {
      // With AUTH=required the health check needs a login; a 401 still says the server is up.
      const r = await fetch(`${url}/api/health`);
      if (r.ok || r.status === 401) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
      throw new Error(`server did not answer /api/health within 20 s:\n${output}`);
    }
    await sleep(100);
  }

  async function waitForSerial(vmId: string, marker: string | RegExp, timeoutMs = 60_000) {
    const file = join(dataDir, 'run', vmId, 'serial.log');
    const until = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < until) {
      last = await readFile(file, 'utf8').catch(() => '');
      if (typeof marker === 'string' ? last.includes(marker) : marker.test(last)) return;
      await sleep(250);
    }
    throw new Error(`serial log ${file} has no ${String(marker)} after ${timeoutMs} ms; it ends with:\n${last.slice(-2000)}`);
  }

  async function stop() {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        const { body } = await api<{ vms?: Array<{ id: string; status: string }> }>('GET', '/vms');
        for (const vm of body.vms ?? []) if (vm.status !== 'stopped') await api('POST', `/vms/${vm.id}/stop`);
      } catch {
        /* server gone */
      }
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // VMs outlive the server by design; never leave one of ours behind.
    for (const pid of qemuPidsMentioning(dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  }

  return { url, dataDir, log: () => output, api, waitForSerial, stop };
}

/** Pids of live QEMU processes whose command line mentions `dir`. */
export function qemuPidsMentioning(dir: string): number[] {
  const pids: number[] = [];
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const cmd = readFileSync(`/proc/${ent}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${ent}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.startsWith('qemu-system') && cmd.includes(dir) && state !== 'Z') pids.push(Number(ent));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** Writes a tiny file that passes as an ISO 9660 image: 32 KiB of zeros, then a descriptor block. */
export async function writeTinyIso(dir: string, name: string): Promise<string> {
  const buf = Buffer.alloc(32 * 1024 + 2048);
  buf.write('\x01CD001\x01', 32 * 1024, 'latin1');
  const file = join(dir, name);
  await writeFile(file, buf);
  return file;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
