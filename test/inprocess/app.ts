/**
 * An in-process QEMU Manager server for tests: the real composition root (buildApp) on a temporary
 * data dir with the fake hypervisor adapters, driven with Fastify's inject() (no port, no process).
 */
import type { FastifyInstance, InjectOptions } from 'fastify';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp, type BuiltApp } from '../../packages/server/src/app.js';
import { loadConfig, type Config } from '../../packages/server/src/config.js';
import { prepareDataDir } from '../../packages/server/src/store/sqlite.js';
import { recordHit } from './check.js';
import { FakeImages, FakeRuntime } from './fake-runtime.js';
import { FakeHostNetworks } from './fake-hostnet.js'; // networks (issue 11)

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Record<string, unknown>;
}

export interface InProcessServer {
  app: FastifyInstance;
  built: BuiltApp;
  config: Config;
  runtime: FakeRuntime;
  images: FakeImages;
  /** Networks (issue 11): the fake host network stack (managed networks available by default). */
  hostNet: FakeHostNetworks;
  dataDir: string;
  /** A JSON request under /api (`path` without the prefix); the body parsed when it is JSON. */
  api<T = any>(method: InjectOptions['method'], path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply<T>>;
  /** Any request, as inject() takes it. */
  inject<T = any>(opts: InjectOptions): Promise<Reply<T>>;
  /** Closes the server (its database, its data dir lock) and removes the data dir. */
  close(): Promise<void>;
}

export function makeTempDir(prefix = 'qm-inproc-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Builds the server. `env` adds to (or overrides) the test defaults; `dataDir` reuses a directory
 * (e.g. to restart on the same data), which close() then removes unless `keepDir` is set.
 */
export async function startInProcess(
  opts: { env?: Record<string, string>; dataDir?: string; keepDir?: boolean; runtime?: FakeRuntime; hostNet?: FakeHostNetworks } = {},
): Promise<InProcessServer> {
  const dataDir = opts.dataDir ?? makeTempDir();
  const env: NodeJS.ProcessEnv = {
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    GUEST_ISOLATION: 'off',
    WEB_DIR: '',
    LOG_LEVEL: 'silent',
    ...opts.env,
  };
  const config = loadConfig(env, dataDir);
  prepareDataDir(config.dataDir);
  const runtime = opts.runtime ?? new FakeRuntime(path.join(dataDir, 'run'));
  const images = new FakeImages();
  const hostNet = opts.hostNet ?? new FakeHostNetworks(); // networks (issue 11)
  let built: BuiltApp;
  try {
    built = await buildApp(config, {
      adapters: async () => ({
        runtime,
        images,
        info: { version: '7.2.0-fake', accel: 'tcg', accelReason: 'fake runtime (in-process tests)', guestIsolation: () => ({ enforced: false, reason: 'GUEST_ISOLATION=off' }) },
      }),
      hostNetworks: () => hostNet, // networks (issue 11)
    });
  } catch (err) {
    if (!opts.keepDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const { app } = built;
  // Which routes answered, and how (a streamed or hijacked reply too: read off the raw response).
  app.addHook('onRequest', (req, reply, done) => {
    const url = req.routeOptions.url;
    if (url === undefined || req.is404) return done();
    let recorded = false;
    const record = () => {
      if (!recorded) recordHit(req.method, url, reply.raw.statusCode);
      recorded = true;
    };
    reply.raw.once('finish', record);
    reply.raw.once('close', record); // a stream the client ended
    done();
  });
  const inject = async <T>(o: InjectOptions): Promise<Reply<T>> => {
    const res = await app.inject(o);
    const type = String(res.headers['content-type'] ?? '');
    const body = type.includes('json') && res.body !== '' ? (JSON.parse(res.body) as T) : (res.body as T);
    return { status: res.statusCode, body, headers: res.headers };
  };
  return {
    app,
    built,
    config,
    runtime,
    images,
    hostNet,
    dataDir,
    inject,
    api: (method, p, body, headers = {}) =>
      inject({
        method,
        url: `/api${p}`,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      }),
    close: async () => {
      await app.close();
      if (!opts.keepDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
