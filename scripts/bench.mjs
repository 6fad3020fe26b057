// `npm run bench`: measures the server against its baselines (QEMU by hand, a bare node:http
// server, direct TCP) and prints a table; raw results go to bench-results/latest.json.
// Everything runs on loopback in a temporary DATA_DIR and is cleaned up, also on Ctrl-C.
// The sections live in bench/: relay.mjs (console relay, console open), lifecycle.mjs (start/stop
// latency), scale.mjs (the fleet), api-load.mjs (GET /api/vms, /api/health), storage.mjs (clones,
// snapshot pause, disk upload), ui.mjs, table.mjs.
//
// Knobs (environment): BENCH_RUNS (start/stop pairs, 10), BENCH_VMS (defined VMs, 1000),
// BENCH_SCALE (VMs started at once, 50), BENCH_LOAD_S (seconds per load round, 4),
// BENCH_RELAY_MIB (echoed MiB per throughput run, 200), BENCH_KEEP=1 (keep the temp DATA_DIR),
// BENCH_PROFILE=<dir> (run the server with --cpu-prof, profile written to <dir> when it exits),
// BENCH_SERVER_MAIN=<path> (benchmark another build of the server's main.js),
// BENCH_STORAGE_RUNS (full clones and uploads per side, 3), BENCH_ONLY=<sections> (comma-separated:
// relay, lifecycle, load (define, GET throughput, scale), storage, backup, cloud, metrics, serial, ui; default all),
// BENCH_METRICS_VMS (VMs sampled in the metrics row, BENCH_SCALE), BENCH_METRICS_WINDOW_S (30),
// BENCH_BACKUP_RUNS (full + incremental backup pairs, 3), BENCH_CLOUD_RUNS (image + cloud-init VMs per side, 3).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { benchThroughput } from '../bench/api-load.mjs';
import { CFG, cleanup, log, results, root, SECTIONS, wanted } from '../bench/context.mjs';
import { benchStartStop } from '../bench/lifecycle.mjs';
import { closeAgent, rssKiB } from '../bench/lib.mjs';
import { benchConsoleOpen, benchRelay } from '../bench/relay.mjs';
import { benchScale, defineVms, startableVms, startIdle, stopAll } from '../bench/scale.mjs';
import { makeDataDir, serverUnderTest } from '../bench/server.mjs';
import { benchStorage, testGuestIso } from '../bench/storage.mjs';
import { benchBackup } from '../bench/backup.mjs';
import { benchCloudImage } from '../bench/cloud-image.mjs';
import { benchMetrics } from '../bench/metrics.mjs'; // sampling cost (issue 14)
import { benchSerial } from '../bench/serial.mjs'; // serial console (issue 14)
import { finish, writeResults } from '../bench/table.mjs';
import { benchUi } from '../bench/ui.mjs';

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up…`);
    cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  const t0 = Date.now();
  const unknown = (process.env.BENCH_ONLY ?? '').split(',').map((x) => x.trim()).filter((x) => x && !SECTIONS.includes(x));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown section(s) ${unknown.join(', ')} (known: ${SECTIONS.join(', ')})`);
  log('building the server (tsc -b packages/server)…');
  const b = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/server'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('build failed');
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0) throw new Error('qemu-system-x86_64 is not installed');
  const dataDir = makeDataDir();

  // Console relay in isolation (no QEMU): first, on a quiet machine.
  if (wanted('relay')) await benchRelay();

  // The test guest first (a build blocks this process for a while, long enough for the server to
  // close the bench's idle kept-alive connections under it).
  if (wanted('storage') || wanted('backup') || wanted('cloud') || wanted('serial')) testGuestIso();

  const server = await serverUnderTest(dataDir);
  if (wanted('lifecycle')) await benchStartStop(server.base, dataDir);

  if (wanted('load')) {
    const defined = await defineVms(server.base, wanted('lifecycle') ? 1 : 0);
    results.server.rssDefinedMiB = rssKiB(server.pid) / 1024;
    const startable = await startableVms(defined);

    // 10 running: console open and throughput.
    const ten = startable.slice(0, CFG.throughputRunning);
    const one = await startIdle(server.base, ten);
    await benchConsoleOpen(server.base, one);
    await benchThroughput(server.base, server.port, dataDir);
    await stopAll(server.base, ten);

    // Scale: CFG.scaleRunning at once.
    await benchScale(server, startable);
  }

  // Clones, snapshot pause, disk upload (no other VM running).
  if (wanted('storage')) await benchStorage(server.base, dataDir);

  if (wanted('backup')) await benchBackup(server.base, dataDir); // backup rows (bench/backup.mjs)

  if (wanted('cloud')) await benchCloudImage(server.base, dataDir); // image + cloud-init row (bench/cloud-image.mjs)

  if (wanted('metrics')) await benchMetrics(server); // sampling cost row (bench/metrics.mjs, issue 14)
  if (wanted('serial')) await benchSerial(server.base, dataDir); // serial console row (bench/serial.mjs)

  if (wanted('ui')) await benchUi(server.base, server.web);
  finish(t0);
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err.stack ?? err}`);
  code = 1;
  if (Object.keys(results.sections).length) {
    results.error = String(err.stack ?? err);
    writeResults();
  }
} finally {
  await cleanup();
  closeAgent();
}
process.exit(code);
