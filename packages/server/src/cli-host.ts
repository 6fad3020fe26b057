/**
 * Admin commands of the service and autostart (issue 15), dispatched from cli.ts:
 *   service install [--user NAME] [--root DIR]   writes the systemd units (and enables them without --root)
 *   service uninstall [--root DIR]                disables and removes them
 *   host shutdown-vms [--timeout SECONDS]         asks the local server to shut every VM down and waits
 * `host shutdown-vms` is what the guests' unit runs on host shutdown: it makes a short-lived admin
 * token in the data dir, calls POST /api/host/shutdown-vms on the server of this data dir, waits for
 * the task and revokes the token. ON_HOST_SHUTDOWN=keep makes it do nothing.
 */
import type { Task } from '@qemu-manager/contract';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuthService } from './auth/service.js';
import { AuthStore } from './auth/store.js';
import { loadConfig, type Config } from './config.js';
import { installUnits, uninstallUnits, type UnitOptions } from './host/service-units.js';
import { openDb } from './store/sqlite.js';

export const HOST_USAGE =
  '       admin service install [--user NAME] [--root DIR]\n' +
  '       admin service uninstall [--root DIR]\n' +
  '       admin host shutdown-vms [--timeout SECONDS]';

export class HostUsageError extends Error {}

const here = path.dirname(fileURLToPath(import.meta.url));

function flags(args: string[], known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!known.includes(name)) throw new HostUsageError(arg.startsWith('-') ? `unknown option ${JSON.stringify(name)}` : `unexpected argument ${JSON.stringify(arg)}`);
    if (name in out) throw new HostUsageError(`${name} is given twice`);
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new HostUsageError(`${name} needs a value`);
    out[name] = value;
  }
  return out;
}

function unitOptions(user: string | undefined): UnitOptions {
  return {
    user: user ?? null,
    node: process.execPath,
    serverMain: path.join(here, 'main.js'),
    cliMain: path.join(here, 'cli.js'),
    workDir: path.resolve(here, '../../..'),
  };
}

const systemctl = (cmd: string, args: string[]): void => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed${r.error ? `: ${r.error.message}` : ` (exit ${r.status})`}`);
};

/** Runs `service …` or `host …`; a bad command line throws HostUsageError. */
export async function hostCommand(cmd: 'service' | 'host', args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (cmd === 'service' && sub === 'install') {
    const f = flags(rest, ['--user', '--root']);
    const root = path.resolve(f['--root'] ?? '/');
    for (const file of installUnits(root, unitOptions(f['--user']), systemctl)) console.error(`wrote ${file}`);
    if (root === '/') console.error('Enabled. Start the server with: systemctl start qemu-manager');
    return 0;
  }
  if (cmd === 'service' && sub === 'uninstall') {
    const f = flags(rest, ['--root']);
    const root = path.resolve(f['--root'] ?? '/');
    for (const file of uninstallUnits(root, systemctl)) console.error(`removed ${file}`);
    return 0;
  }
  if (cmd === 'host' && sub === 'shutdown-vms') {
    const f = flags(rest, ['--timeout']);
    const raw = f['--timeout'] ?? process.env.SHUTDOWN_TIMEOUT;
    if (raw !== undefined && !/^[1-9][0-9]{0,3}$/.test(raw)) throw new HostUsageError(`the timeout must be 1..3600 seconds, got ${JSON.stringify(raw)}`);
    if (raw !== undefined && Number(raw) > 3600) throw new HostUsageError('the timeout must be at most 3600 seconds');
    if ((process.env.ON_HOST_SHUTDOWN ?? '').toLowerCase() === 'keep') {
      console.error('ON_HOST_SHUTDOWN=keep: the VMs are left running');
      return 0;
    }
    return shutdownVms(loadConfig(process.env, process.env.INIT_CWD ?? process.cwd()), raw === undefined ? undefined : Number(raw));
  }
  throw new HostUsageError(sub === undefined ? `${cmd} needs a command` : `unknown command ${JSON.stringify(`${cmd} ${sub}`)}`);
}

interface Answer {
  status: number;
  body: unknown;
}

function request(config: Config, token: string, method: string, p: string, body?: unknown): Promise<Answer> {
  const host = config.host === '0.0.0.0' || config.host === '::' || config.host === '' ? '127.0.0.1' : config.host;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const opts = {
    host,
    port: config.port,
    method,
    path: p,
    headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    // With TLS the server's own certificate is the trust anchor (often self-signed).
    ...(config.tls ? { ca: fs.readFileSync(config.tls.cert), servername: 'localhost' } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (config.tls ? https : http).request(opts, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) : null });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function shutdownVms(config: Config, timeout: number | undefined): Promise<number> {
  const db = openDb(path.join(config.dataDir, 'db.sqlite'));
  const auth = new AuthService(new AuthStore(db), true);
  const created = auth.createToken({ name: 'host-shutdown', scope: 'admin', expiresIn: 2 * 3600 });
  try {
    const started = await request(config, created.token, 'POST', '/api/host/shutdown-vms', timeout === undefined ? {} : { timeout });
    if (started.status !== 202) {
      console.error(`The server refused the shutdown (${started.status}): ${(started.body as { error?: string } | null)?.error ?? ''}`);
      return 1;
    }
    let task = (started.body as { task: Task }).task;
    while (task.status === 'queued' || task.status === 'running') {
      await new Promise((r) => setTimeout(r, 1000));
      task = ((await request(config, created.token, 'GET', `/api/tasks/${task.id}`)).body as { task: Task }).task;
    }
    const vms = (task.result?.vms ?? []) as Array<{ name: string; outcome: string; error?: string }>;
    for (const v of vms) console.log(`${v.name}\t${v.outcome}${v.error ? `\t${v.error}` : ''}`);
    if (task.status !== 'succeeded') console.error(`The shutdown ${task.status}: ${task.error ?? ''}`);
    return task.status === 'succeeded' ? 0 : 1;
  } catch (err) {
    console.error(`The server of ${config.dataDir} could not be reached: ${(err as Error).message}`);
    return 1;
  } finally {
    auth.revokeToken(created.id);
    db.close();
  }
}
