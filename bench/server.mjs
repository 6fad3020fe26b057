// The server under test: its temporary DATA_DIR, starting it (with the web UI, or without when
// that fails), and stopping it and every QEMU it left behind at cleanup.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, onCleanup, results, root } from './context.mjs';
import { alive, api, fmt, freePort, mapLimit, pidsWithCmdline, request, rssKiB, waitFor } from './lib.mjs';

/** A fresh $TMPDIR/qm-bench-XXXXXX; removed (unless BENCH_KEEP=1) with any QEMU still using it. */
export function makeDataDir() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-'));
  results.dataDir = dataDir;
  // The server (as root) installs the guest-isolation table and leaves it for VMs that outlive it;
  // the bench leaves the host as it found it. Registered first, so it runs last.
  const nft = (...a) => spawnSync('nft', a, { stdio: 'ignore' }).status === 0;
  const hadTable = nft('list', 'table', 'inet', 'qemu_manager');
  onCleanup('nftables table', async () => {
    if (!hadTable && nft('list', 'table', 'inet', 'qemu_manager')) nft('delete', 'table', 'inet', 'qemu_manager');
  });
  onCleanup('data dir', async () => {
    if (process.env.BENCH_KEEP === '1') console.error(`kept ${dataDir}`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  });
  onCleanup('leftover qemu', async () => {
    const left = pidsWithCmdline(dataDir).filter((p) => /qemu-system/.test(p.argv[0] ?? ''));
    for (const p of left) {
      console.error(`killing leftover QEMU ${p.pid}`);
      try {
        process.kill(p.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    if (left.length && !(await waitFor(() => left.every((p) => !alive(p.pid)), 3000, 20))) {
      for (const p of left) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    }
  });
  log(`DATA_DIR ${dataDir}`);
  return dataDir;
}

async function startServer(dataDir, { web = true } = {}) {
  const port = await freePort();
  const logFile = path.join(dataDir, 'server.log');
  const fd = fs.openSync(logFile, 'a');
  // VNC_TCP=1: the console sections compare the proxy with a direct TCP connection to QEMU's VNC.
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, ACCEL: 'tcg', VNC_TCP: '1' };
  if (web) delete env.WEB_DIR; // serve packages/web/dist, like a default install
  else env.WEB_DIR = '';
  // Own process group: a Ctrl-C on the terminal reaches only us, and we stop the VMs through it.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE)}`] : [];
  const main = process.env.BENCH_SERVER_MAIN ? path.resolve(process.env.BENCH_SERVER_MAIN) : path.join(root, 'packages/server/dist/main.js');
  const child = spawn(process.execPath, [...profile, main], {
    env,
    cwd: dataDir,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  const pid = child.pid;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const task = async () => {
    if (exited || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    if (!(await waitFor(() => exited || !alive(pid), 5000, 20))) process.kill(pid, 'SIGKILL');
  };
  onCleanup('server', task);
  const base = `http://127.0.0.1:${port}`;
  const up = await waitFor(
    async () => {
      if (exited) return true;
      try {
        return (await request(base, 'GET', '/api/health', undefined, { timeoutMs: 1000 })).status === 200;
      } catch {
        return false;
      }
    },
    30_000,
    50,
  );
  if (!up || exited) {
    await task();
    const tail = fs.readFileSync(logFile, 'utf8').slice(-4000);
    throw Object.assign(new Error(`server did not start; log:\n${tail}`), { tail });
  }
  return { base, port, pid, logFile, web };
}

/**
 * Starts the server on `dataDir`, with the web UI if it can; at cleanup its VMs are stopped through
 * the API and its log is copied to bench-results/server.log.
 */
export async function serverUnderTest(dataDir) {
  let server;
  try {
    server = await startServer(dataDir);
  } catch (err) {
    // Still measure the API when only the UI part is broken; the UI rows say why they are missing.
    const why = /^(?:Error|TypeError): .*$/m.exec(err.tail ?? '')?.[0] ?? err.message.split('\n')[0];
    results.serverWithUiError = why;
    log(`server failed to start with the web UI (${why}); retrying with WEB_DIR=''`);
    server = await startServer(dataDir, { web: false });
  }
  results.server = { pid: server.pid, rssIdleMiB: rssKiB(server.pid) / 1024 };
  onCleanup('vms', async () => {
    const { body } = await api(server.base, 'GET', '/api/vms');
    const live = body.vms.filter((v) => v.status !== 'stopped');
    const r = await mapLimit(live, 64, (v) => api(server.base, 'POST', `/api/vms/${v.id}/stop`, undefined, 200, { timeoutMs: 20_000 }));
    const failed = r.filter((x) => !x.ok).length;
    if (failed) console.error(`${failed} VM(s) did not stop through the API`);
  });
  onCleanup('server log', async () => {
    fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true });
    fs.copyFileSync(server.logFile, path.join(root, 'bench-results/server.log'));
  });
  log(`server pid ${server.pid} on ${server.base}, RSS ${fmt(results.server.rssIdleMiB)} MiB`);
  return server;
}
