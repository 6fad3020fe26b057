/**
 * A network namespace of the test's own, with only loopback (plus what the test adds), so that
 * nothing a server or guest inside it sends can leave the host. The test reaches a server inside
 * through a relay: a TCP listener on the test's 127.0.0.1 → a unix socket (file systems are shared
 * across namespaces) → a relay process inside the namespace → the server's 127.0.0.1 port there.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const INNER_RELAY = `
const net = require('node:net');
const [sock, port] = process.argv.slice(1);
net.createServer((c) => {
  const t = net.connect(Number(port), '127.0.0.1');
  c.on('error', () => t.destroy());
  t.on('error', () => c.destroy());
  c.pipe(t).pipe(c);
}).listen(sock, () => console.log('relay ready'));
`;

export class Netns {
  private readonly children: ChildProcess[] = [];
  private readonly listeners: net.Server[] = [];
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-netns-'));

  private constructor(readonly name: string) {}

  static create(): Netns {
    const ns = new Netns(`qmt-${crypto.randomBytes(4).toString('hex')}`);
    ns.must('ip', ['netns', 'add', ns.name]);
    ns.exec('ip', 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip netns exec <name>`, to put in front of a command. */
  get wrap(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  private must(cmd: string, args: string[], input?: string): string {
    const r = spawnSync(cmd, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs a command inside the namespace and returns its stdout (throws on failure). */
  exec(...argv: string[]): string {
    return this.must('ip', ['netns', 'exec', this.name, ...argv]);
  }

  /** Starts a long-running process inside the namespace; it is killed (by pid) in delete(). */
  spawn(argv: string[], readyLine: string): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no "${readyLine}" from ${argv.join(' ')}: ${out}`)), 10_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes(readyLine)) {
          clearTimeout(timer);
          resolve(child);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${argv.join(' ')} exited with ${code}: ${out}`));
      });
    });
  }

  /** A URL on the test's loopback that leads to 127.0.0.1:<port> inside the namespace. */
  async relayTo(port: number): Promise<string> {
    const sock = path.join(this.dir, `relay-${port}.sock`);
    await this.spawn([process.execPath, '-e', INNER_RELAY, sock, String(port)], 'relay ready');
    const outer = net.createServer((c) => {
      const u = net.connect(sock);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
      c.pipe(u).pipe(c);
    });
    this.listeners.push(outer);
    await new Promise<void>((resolve) => outer.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(outer.address() as net.AddressInfo).port}`;
  }

  /** Runs a command inside the namespace without throwing: its exit status and output (bounded by `timeoutMs`). */
  run(argv: string[], timeoutMs = 15_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /**
   * An HTTP GET made by a process inside the namespace (so 127.0.0.1 is the namespace's loopback):
   * `{ ok: true, status, text }`, or `{ ok: false, error }` with the connection error's code
   * (ECONNREFUSED when nothing listens).
   */
  async fetchInside(url: string, timeoutMs = 8000): Promise<{ ok: true; status: number; text: string } | { ok: false; error: string }> {
    const script = `fetch(process.argv[1], { signal: AbortSignal.timeout(${timeoutMs}) }).then(async (r) => console.log(JSON.stringify({ ok: true, status: r.status, text: await r.text() })), (e) => console.log(JSON.stringify({ ok: false, error: String(e?.cause?.code ?? e?.name ?? e) })))`;
    const r = await this.run([process.execPath, '-e', script, url], timeoutMs + 5000);
    try {
      return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { ok: true; status: number; text: string } | { ok: false; error: string };
    } catch {
      return { ok: false, error: `no answer (exit ${r.code}): ${r.stderr.slice(0, 300)}` };
    }
  }

  /** The pids of the processes inside the namespace. */
  pids(): number[] {
    return this.must('ip', ['netns', 'pids', this.name])
      .split('\n')
      .filter((l) => /^\d+$/.test(l.trim()))
      .map(Number);
  }

  /** The pids inside the namespace whose program name (/proc/<pid>/comm) is `comm`. */
  pidsOf(comm: string): number[] {
    return this.pids().filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
      } catch {
        return false;
      }
    });
  }

  /** The namespace's network interfaces (`ip -j link`): name and bridge master. */
  links(): Array<{ name: string; master: string | null }> {
    return (JSON.parse(this.exec('ip', '-j', 'link', 'show')) as Array<{ ifname: string; master?: string }>).map((l) => ({ name: l.ifname, master: l.master ?? null }));
  }

  /** The namespace's whole nftables ruleset, without counters (`nft -s list ruleset`). */
  ruleset(): string {
    return this.exec('nft', '-s', 'list', 'ruleset');
  }

  /** Ends what it started (by pid), then deletes the namespace. */
  async delete(): Promise<void> {
    for (const l of this.listeners) l.close();
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    spawnSync('ip', ['netns', 'del', this.name]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A port number for a server inside a fresh namespace (every port there is free). */
export function portInNamespace(): number {
  return 20_000 + crypto.randomInt(30_000);
}
