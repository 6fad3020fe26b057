// A real QEMU Manager server for the browser tests: its own temp data dir with the test guest ISO,
// a free port, TCG. Teardown stops every VM through the API, then the server, then removes the dir.
// The process, ports, QEMU-pid scan and API client are the shared test kit's (test/kit/).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureTestGuestIso, READY_MARKER } from '../test/guest/index.js';
import { cleanupDataDir, login, makeDataDir, repoRoot, request, serialLog, type ServerProcess, serialLogPath, startServer as startKitServer, stopAllVms, waitFor } from '../test/kit/index.mjs';

export { repoRoot };
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
  if (!existsSync(WEB_INDEX)) throw new Error(`${WEB_INDEX} is missing: run \`npm run build -w packages/web\` first`);
  const iso = await ensureTestGuestIso();
  const dataDir = makeDataDir('qm-test-e2e-');
  let server: ServerProcess;
  try {
    await mkdir(join(dataDir, 'isos'), { recursive: true });
    await copyFile(iso, join(dataDir, 'isos', TEST_ISO_NAME));
    server = await startKitServer({
      dataDir,
      env: { ACCEL: 'tcg', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...opts.env },
      // With AUTH=required a 401 still says the server is up.
      ready: (status) => status === 200 || status === 401,
      pollMs: 100,
    });
  } catch (err) {
    cleanupDataDir(dataDir);
    throw err;
  }
  const { url } = server;

  let cookie: string | undefined;
  async function api<T>(method: string, path: string, body?: unknown) {
    if (opts.password && !cookie) cookie = await login(url, opts.password);
    const { status, body: parsed } = await request<T>(url, method, `/api${path}`, body, { cookie });
    return { status, body: parsed };
  }

  async function waitForSerial(vmId: string, marker: string | RegExp, timeoutMs = 60_000) {
    const seen = () => {
      const text = serialLog(dataDir, vmId);
      return typeof marker === 'string' ? text.includes(marker) : marker.test(text);
    };
    await waitFor(seen, timeoutMs, `${String(marker)} in the serial log`, 250).catch(() => {
      throw new Error(`serial log ${serialLogPath(dataDir, vmId)} has no ${String(marker)} after ${timeoutMs} ms; it ends with:\n${serialLog(dataDir, vmId).slice(-2000)}`);
    });
  }

  async function stop() {
    if (server.running) {
      try {
        if (opts.password && !cookie) cookie = await login(url, opts.password);
        await stopAllVms(url, { cookie });
      } catch {
        /* server gone */
      }
      await server.stop({ graceMs: 10_000 });
    }
    // VMs outlive the server by design; never leave one of ours behind.
    cleanupDataDir(dataDir);
  }

  return { url, dataDir, log: () => server.log(), api, waitForSerial, stop };
}

/** Writes a tiny file that passes as an ISO 9660 image: 32 KiB of zeros, then a descriptor block. */
export async function writeTinyIso(dir: string, name: string): Promise<string> {
  const buf = Buffer.alloc(32 * 1024 + 2048);
  buf.write('\x01CD001\x01', 32 * 1024, 'latin1');
  const file = join(dir, name);
  await writeFile(file, buf);
  return file;
}
