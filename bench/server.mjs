// The server under test: its temporary DATA_DIR, starting it (with the web UI, or without when
// that fails), and stopping it and every QEMU it left behind at cleanup.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeDataDir as makeKitDataDir, startServer as startKitServer, stopAllVms, stopQemusOf } from '../test/kit/index.mjs';
import { log, onCleanup, results, root } from './context.mjs';
import { fmt, rssKiB } from './lib.mjs';

/** A fresh $TMPDIR/qm-bench-XXXXXX; removed (unless BENCH_KEEP=1) with any QEMU still using it. */
export function makeDataDir() {
  const dataDir = makeKitDataDir('qm-bench-');
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
    await stopQemusOf(dataDir, { graceMs: 3000, onKill: (pid) => console.error(`killing leftover QEMU ${pid}`) });
  });
  log(`DATA_DIR ${dataDir}`);
  return dataDir;
}

async function startServer(dataDir, { web = true } = {}) {
  const logFile = path.join(dataDir, 'server.log');
  // VNC_TCP=1: the console sections compare the proxy with a direct TCP connection to QEMU's VNC.
  // Without WEB_DIR the server serves packages/web/dist, like a default install.
  const env = { ACCEL: 'tcg', VNC_TCP: '1', WEB_DIR: web ? undefined : '' };
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE)}`] : [];
  let server = null;
  // Registered before the start: a server that never answered is stopped at cleanup too.
  onCleanup('server', async () => server?.stop({ graceMs: 5000 }));
  try {
    server = await startKitServer({
      dataDir,
      env,
      main: process.env.BENCH_SERVER_MAIN ? path.resolve(process.env.BENCH_SERVER_MAIN) : undefined,
      nodeArgs: profile,
      cwd: dataDir,
      // Own process group: a Ctrl-C on the terminal reaches only us, and we stop the VMs through it.
      detached: true,
      logFile,
      ready: (status) => status === 200,
      readyTimeoutMs: 30_000,
      probeTimeoutMs: 1000,
    });
  } catch (err) {
    let tail = '';
    try {
      tail = fs.readFileSync(logFile, 'utf8').slice(-4000);
    } catch {
      /* it never ran */
    }
    throw Object.assign(new Error(`server did not start (${err.message.split('\n')[0]}); log:\n${tail}`, { cause: err }), { tail });
  }
  return { base: server.url, port: server.port, pid: server.pid, logFile, web };
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
    const failed = await stopAllVms(server.base, { concurrency: 64, timeoutMs: 20_000 });
    if (failed) console.error(`${failed} VM(s) did not stop through the API`);
  });
  onCleanup('server log', async () => {
    fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true });
    fs.copyFileSync(server.logFile, path.join(root, 'bench-results/server.log'));
  });
  log(`server pid ${server.pid} on ${server.base}, RSS ${fmt(results.server.rssIdleMiB)} MiB`);
  return server;
}
