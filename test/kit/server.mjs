// @ts-check
// A real QEMU Manager server process for tests and the bench: packages/server/dist/main.js on a
// free loopback port with DATA_DIR set, ready once GET /api/health answers. Stopping it sends
// SIGTERM and, after a grace time, SIGKILL (by pid). VMs outlive the server by design: whoever
// owns the data dir kills its QEMUs by pid afterwards (cleanupDataDir).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './api.mjs';
import { freePort } from './ports.mjs';
import { killQemusOf } from './procs.mjs';
import { sleep } from './wait.mjs';

/** The repository's root directory. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built server (`npx tsc -b packages/server`). */
export const SERVER_MAIN = path.join(repoRoot, 'packages/server/dist/main.js');

/** Keeps the in-memory log of a server at most this long (the tail, once it grew twice as long). */
const LOG_KEEP = 100_000;

/**
 * A fresh temporary data dir, $TMPDIR/<prefix>XXXXXX.
 * @param {string} [prefix]
 * @returns {string}
 */
export function makeDataDir(prefix = 'qm-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Kills (SIGKILL, by pid) every QEMU whose command line mentions `dir`, then removes `dir` unless
 * `keep`. Returns how many QEMUs were killed.
 * @param {string} dir
 * @param {{ keep?: boolean }} [opts]
 * @returns {number}
 */
export function cleanupDataDir(dir, { keep = false } = {}) {
  const killed = killQemusOf(dir);
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return killed;
}

/**
 * A VM's serial console output so far (the test guest prints its markers there); '' before it exists.
 * @param {string} dataDir
 * @param {string} vmId
 * @returns {string}
 */
export function serialLog(dataDir, vmId) {
  try {
    return fs.readFileSync(serialLogPath(dataDir, vmId), 'utf8');
  } catch {
    return '';
  }
}

/**
 * Where the server keeps a VM's serial log.
 * @param {string} dataDir
 * @param {string} vmId
 */
export const serialLogPath = (dataDir, vmId) => path.join(dataDir, 'run', vmId, 'serial.log');

/**
 * @typedef {object} ServerOptions
 * @property {string} dataDir the server's DATA_DIR
 * @property {Record<string, string | undefined>} [env] on top of process.env and HOST/PORT/DATA_DIR;
 *   a key set to `undefined` is removed from the environment
 * @property {number} [port] default: a free port
 * @property {string[]} [wrap] a command the server runs under, e.g. `ip netns exec NS`
 * @property {string} [url] where the caller reaches it, when that is not <scheme>://127.0.0.1:<port>
 * @property {boolean} [https] the server serves TLS (TLS_CERT/TLS_KEY in env)
 * @property {string} [main] default: packages/server/dist/main.js
 * @property {string[]} [nodeArgs] options for node before the script (e.g. --cpu-prof)
 * @property {string} [cwd]
 * @property {boolean} [detached] own process group (a Ctrl-C on the terminal does not reach it)
 * @property {string} [logFile] stdout and stderr go (appended) to this file instead of memory
 * @property {string} [readyPath] probed until it answers; default /api/health
 * @property {(status: number) => boolean} [ready] which answer counts as up; default: any HTTP answer
 * @property {number} [readyTimeoutMs] default 20 s
 * @property {number} [pollMs] between probes; default 50 ms
 * @property {number} [probeTimeoutMs] one probe; default 5 s
 */

/** A started server process (see startServer). */
export class ServerProcess {
  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {{ port: number, url: string, dataDir: string, logFile?: string }} where
   */
  constructor(child, where) {
    this.child = child;
    this.pid = /** @type {number} */ (child.pid);
    this.port = where.port;
    this.url = where.url;
    this.dataDir = where.dataDir;
    this.logFile = where.logFile;
    /** @private */
    this.output = '';
    /** Resolves when the process has exited. */
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(undefined);
      else child.once('exit', () => resolve(undefined));
    });
    /** @param {Buffer} b */
    const append = (b) => {
      this.output += b.toString();
      if (this.output.length > 2 * LOG_KEEP) this.output = this.output.slice(-LOG_KEEP);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  }

  /** True until the process has exited. */
  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * What the server printed (stdout and stderr; the last part of the log file with `logFile`).
   * @returns {string}
   */
  log() {
    if (!this.logFile) return this.output;
    try {
      return fs.readFileSync(this.logFile, 'utf8').slice(-LOG_KEEP);
    } catch {
      return '';
    }
  }

  /**
   * Sends `signal` (SIGKILL: a crash) and waits until the process has exited.
   * @param {NodeJS.Signals} [signal]
   * @returns {Promise<void>}
   */
  async kill(signal = 'SIGKILL') {
    if (!this.running) return;
    this.child.kill(signal);
    await this.exited;
  }

  /**
   * SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once it has exited.
   * @param {{ graceMs?: number }} [opts]
   * @returns {Promise<void>}
   */
  async stop({ graceMs = 10_000 } = {}) {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const escalate = new Promise((resolve) => {
      timer = setTimeout(() => resolve(this.child.kill('SIGKILL')), graceMs);
    });
    await Promise.race([this.exited, escalate]);
    clearTimeout(timer);
    await this.exited;
  }
}

/**
 * Spawns the server and resolves once it answers `readyPath`. If it exits first or does not answer
 * within `readyTimeoutMs`, it is stopped and the promise rejects with its log. The data dir is the
 * caller's: this never removes it.
 * @param {ServerOptions} opts
 * @returns {Promise<ServerProcess>}
 */
export async function startServer(opts) {
  const main = opts.main ?? SERVER_MAIN;
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` in ${repoRoot} first`);
  const port = opts.port ?? (await freePort());
  const url = opts.url ?? `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}`;
  /** @type {NodeJS.ProcessEnv} */
  // UI_PORT off unless a test asks for it: test servers must not compete for the fixed default 3001.
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: opts.dataDir, UI_PORT: '' };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const argv = [...(opts.wrap ?? []), process.execPath, ...(opts.nodeArgs ?? []), main];
  const fd = opts.logFile ? fs.openSync(opts.logFile, 'a') : undefined;
  const child = spawn(/** @type {string} */ (argv[0]), argv.slice(1), {
    env,
    cwd: opts.cwd,
    detached: opts.detached ?? false,
    stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
  });
  if (fd !== undefined) fs.closeSync(fd);
  const server = new ServerProcess(child, { port, url, dataDir: opts.dataDir, logFile: opts.logFile });
  /** @type {Error | undefined} */
  let spawnError;
  child.once('error', (err) => {
    spawnError = err;
  });

  const ready = opts.ready ?? ((/** @type {number} */ status) => status > 0);
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError) throw new Error(`the server did not start: ${spawnError.message}`);
    if (!server.running) throw new Error(`server exited with ${child.exitCode ?? child.signalCode}:\n${server.log()}`);
    try {
      const r = await request(url, 'GET', opts.readyPath ?? '/api/health', undefined, { timeoutMs: opts.probeTimeoutMs ?? 5000 });
      if (ready(r.status)) return server;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await server.stop({ graceMs: 5000 });
      throw new Error(`server did not answer ${opts.readyPath ?? '/api/health'} within ${timeoutMs / 1000} s:\n${server.log()}`);
    }
    await sleep(opts.pollMs ?? 50);
  }
}
