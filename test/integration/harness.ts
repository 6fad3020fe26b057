/**
 * A real QEMU Manager server process on a free port with its own temporary data dir, for tests.
 * Cleanup stops every VM it started and kills (by pid) any QEMU whose command line names its data dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ensureTestGuestIso } from '../guest/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(repoRoot, 'packages/server/dist/main.js');

export interface ApiResult<T = any> {
  status: number;
  body: T;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Listens on 127.0.0.1:port as "another program" would (if something already holds it, that is the same). */
export async function holdPort(port: number): Promise<net.Server> {
  const blocker = net.createServer();
  await new Promise<void>((r) => {
    blocker.once('error', () => r());
    blocker.listen(port, '127.0.0.1', () => r());
  });
  return blocker;
}

export function makeDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-'));
}

export class TestServer {
  proc: ChildProcess | null = null;
  port = 0;
  log = '';
  scheme: 'http' | 'https' = 'http';

  constructor(
    readonly dataDir: string,
    readonly env: Record<string, string> = {},
    /** `wrap`: a command the server runs under (e.g. `ip netns exec NS`); `port`: its port there;
     *  `url`: where the test reaches it, when that is not 127.0.0.1:port (a relay). */
    readonly where: { wrap?: string[]; port?: number; url?: string } = {},
  ) {}

  get url(): string {
    return this.where.url ?? `${this.scheme}://127.0.0.1:${this.port}`;
  }

  async start(opts: { https?: boolean } = {}): Promise<this> {
    this.scheme = opts.https ? 'https' : 'http';
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    this.port = this.where.port ?? (await freePort());
    const argv = [...(this.where.wrap ?? []), process.execPath, MAIN];
    const proc = spawn(argv[0]!, argv.slice(1), {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(this.port),
        DATA_DIR: this.dataDir,
        ACCEL: process.env.ACCEL ?? 'auto',
        WEB_DIR: '',
        LOG_LEVEL: 'info',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const append = (b: Buffer) => {
      this.log += b.toString();
      if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
    };
    proc.stdout!.on('data', append);
    proc.stderr!.on('data', append);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${this.log}`);
      try {
        if (await answers(`${this.url}/api/auth/status`)) return this;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`server did not answer /api/health within 20 s:\n${this.log}`);
  }

  async api<T = any>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResult<T>> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const r = await fetch(`${this.url}/api${p}`, init);
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed as T };
  }

  /** Kills the server process (SIGKILL simulates a crash). VMs keep running. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await exited;
    this.proc = null;
  }

  /** Stops all VMs through the API, stops the server, kills any QEMU of this data dir left over. */
  async dispose(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.proc) {
      try {
        const { body } = await this.api('GET', '/vms');
        for (const vm of body.vms ?? []) {
          if (vm.status !== 'stopped') await this.api('POST', `/vms/${vm.id}/stop`);
        }
      } catch {
        /* server already gone */
      }
      await this.kill('SIGTERM');
    }
    killQemusOf(this.dataDir);
    if (!opts.keepDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** True once the server answers HTTP(S) at all (self-signed certificates accepted). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) > 0);
    });
    req.on('error', () => resolve(false));
  });
}

/** Pids of QEMU processes whose command line mentions `dir`. */
export function qemuPidsOf(dir: string): number[] {
  const pids: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${ent}/cmdline`, 'utf8');
      const state = fs.readFileSync(`/proc/${ent}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.startsWith('qemu-system') && cmd.includes(dir) && state !== 'Z') pids.push(Number(ent));
    } catch {
      /* gone */
    }
  }
  return pids;
}

export function killQemusOf(dir: string): number {
  const pids = qemuPidsOf(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  return pids.length;
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Collects the server's SSE events. */
export class EventLog {
  events: Array<{ type: string; [k: string]: any }> = [];
  private ctrl = new AbortController();
  private done: Promise<void>;

  constructor(url: string) {
    this.done = (async () => {
      const r = await fetch(`${url}/api/events`, { signal: this.ctrl.signal });
      const reader = r.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) this.events.push(JSON.parse(data.slice(6)));
        }
      }
    })().catch(() => undefined);
  }

  statusesOf(vmId: string): string[] {
    return this.events.filter((e) => e.type === 'vm.updated' && e.vm.id === vmId).map((e) => e.vm.status);
  }

  close(): Promise<void> {
    this.ctrl.abort();
    return this.done;
  }
}

/** Reads a VM's serial log (the test guest prints its markers there). */
export function serialLog(dataDir: string, vmId: string): string {
  try {
    return fs.readFileSync(path.join(dataDir, 'run', vmId, 'serial.log'), 'utf8');
  } catch {
    return '';
  }
}

/** Opens the VM's console through the proxy and returns the first bytes (the RFB banner). */
export function vncBanner(url: string, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/vnc/${id}`, ['binary']);
    const timer = setTimeout(() => reject(new Error('no VNC banner within 5 s')), 5000);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve(data.toString('latin1'));
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`upgrade refused with ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}


/** A server with the test guest ISO in its library and an event log following it. */
export async function startGuestServer(): Promise<{ server: TestServer; events: EventLog; isoPath: string }> {
  const iso = await ensureTestGuestIso();
  const server = await new TestServer(makeDataDir()).start();
  const isoPath = path.join(server.dataDir, 'isos', 'testguest.iso');
  fs.copyFileSync(iso, isoPath);
  return { server, events: new EventLog(server.url), isoPath };
}
