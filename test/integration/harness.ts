/**
 * A real QEMU Manager server process on a free port with its own temporary data dir, for tests.
 * Cleanup stops every VM it started and kills (by pid) any QEMU whose command line names its data dir.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { ensureTestGuestIso } from '../guest/index.js';
import { cleanupDataDir, makeDataDir as makeKitDataDir, request, ServerProcess, startServer, stopAllVms } from '../kit/index.mjs';

export { freePort, holdPort, killQemusOf, qemuPidsOf, repoRoot, serialLog, waitFor } from '../kit/index.mjs';

export interface ApiResult<T = any> {
  status: number;
  body: T;
}

export function makeDataDir(): string {
  return makeKitDataDir('qm-test-');
}

export class TestServer {
  /** The running server (null before start and after kill). */
  proc: ChildProcess | null = null;
  port = 0;
  scheme: 'http' | 'https' = 'http';
  private server: ServerProcess | null = null;
  /** Output of the runs before the current one (start after kill keeps the whole log). */
  private earlier = '';

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

  /** Server stdout+stderr, across restarts. */
  get log(): string {
    return this.earlier + (this.server?.log() ?? '');
  }

  async start(opts: { https?: boolean } = {}): Promise<this> {
    this.scheme = opts.https ? 'https' : 'http';
    if (this.server) this.earlier += this.server.log();
    this.server = null;
    const server = await startServer({
      dataDir: this.dataDir,
      env: { ACCEL: process.env.ACCEL ?? 'auto', WEB_DIR: '', LOG_LEVEL: 'info', ...this.env },
      port: this.where.port,
      wrap: this.where.wrap,
      url: this.where.url,
      https: opts.https,
    });
    this.server = server;
    this.port = server.port;
    this.proc = server.child;
    return this;
  }

  async api<T = any>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResult<T>> {
    const { status, body: parsed } = await request<T>(this.url, method, `/api${p}`, body, { headers });
    return { status, body: parsed };
  }

  /** Kills the server process (SIGKILL simulates a crash). VMs keep running. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.server?.running) return;
    await this.server.kill(signal);
    this.proc = null;
  }

  /** Stops all VMs through the API, stops the server, kills any QEMU of this data dir left over. */
  async dispose(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.server?.running) {
      await stopAllVms(this.url).catch(() => undefined); // server already gone, or it wants credentials
      await this.server.stop();
      this.proc = null;
    }
    cleanupDataDir(this.dataDir, { keep: opts.keepDir });
  }
}

/** Collects the server's SSE events. */
export class EventLog {
  events: Array<{ type: string; [k: string]: any }> = [];
  private ctrl = new AbortController();
  private done: Promise<void>;
  /** Resolves once the stream is open (the server subscribes before it answers): no event is missed after it. */
  readonly ready: Promise<void>;

  constructor(url: string) {
    let opened!: () => void;
    this.ready = new Promise((r) => (opened = r));
    this.done = (async () => {
      const r = await fetch(`${url}/api/events`, { signal: this.ctrl.signal });
      opened();
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
    void this.done.then(() => opened()); // a stream that failed to open does not leave ready pending
  }

  statusesOf(vmId: string): string[] {
    return this.events.filter((e) => e.type === 'vm.updated' && e.vm.id === vmId).map((e) => e.vm.status);
  }

  close(): Promise<void> {
    this.ctrl.abort();
    return this.done;
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
  const events = new EventLog(server.url);
  await events.ready;
  return { server, events, isoPath };
}
