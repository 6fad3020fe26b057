// `npm run bench`: measures the server against its baselines (QEMU by hand, a bare node:http
// server, direct TCP) and prints a table; raw results go to bench-results/latest.json.
// Everything runs on loopback in a temporary DATA_DIR and is cleaned up, also on Ctrl-C.
//
// Knobs (environment): BENCH_RUNS (start/stop pairs, 10), BENCH_VMS (defined VMs, 1000),
// BENCH_SCALE (VMs started at once, 50), BENCH_LOAD_S (seconds per load round, 4),
// BENCH_RELAY_MIB (echoed MiB per throughput run, 200), BENCH_KEEP=1 (keep the temp DATA_DIR),
// BENCH_PROFILE=<dir> (run the server with --cpu-prof, profile written to <dir> when it exits),
// BENCH_SERVER_MAIN=<path> (benchmark another build of the server's main.js).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { handArgv, handStart, handStop, prepareDir, processIds } from '../bench/byhand.mjs';
import { echoRtt, echoThroughput, sinkThroughput, slowClient, timeToBanner } from '../bench/console.mjs';
import {
  alive,
  api,
  closeAgent,
  fmt,
  forkHelper,
  freePort,
  mapLimit,
  median,
  nowMs,
  percentile,
  pidsWithCmdline,
  portFree,
  request,
  rssKiB,
  settle,
  sleep,
  summary,
  waitFor,
} from '../bench/lib.mjs';
import { runLoad } from '../bench/load.mjs';
import { firstLoadJs, timeToRows } from '../bench/ui.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const int = (name, dflt) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
const CFG = {
  startStopRuns: int('BENCH_RUNS', 10),
  vms: int('BENCH_VMS', 1000),
  throughputRunning: 10,
  scaleRunning: int('BENCH_SCALE', 50),
  loadSeconds: int('BENCH_LOAD_S', 4),
  loadRounds: 2,
  connections: 10,
  consoleOpens: 100,
  relayMiB: int('BENCH_RELAY_MIB', 200),
  relayRounds: 3,
  pings: 1000,
  uiRuns: 3,
  memoryMiB: 64,
};
const MiB = 1024 * 1024;
const FAKE_VM = '00000000-0000-4000-8000-000000000000';

const results = { startedAt: new Date().toISOString(), config: CFG, machine: machine(), sections: {} };
const log = (...a) => console.log(`[bench ${((Date.now() - Date.parse(results.startedAt)) / 1000).toFixed(0).padStart(3)}s]`, ...a);

// --- cleanup: tasks run in reverse order of registration, once, also on SIGINT/SIGTERM ----------
const cleanupTasks = [];
let cleaning = null;
function onCleanup(name, fn) {
  cleanupTasks.push({ name, fn });
}
function cleanup() {
  cleaning ??= (async () => {
    for (const { name, fn } of cleanupTasks.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup (${name}) failed: ${err.message}`);
      }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up…`);
    cleanup().finally(() => process.exit(130));
  });
}

function machine() {
  const cpus = os.cpus();
  const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  const virt = spawnSync('systemd-detect-virt', [], { encoding: 'utf8' });
  let kvm = 'no /dev/kvm';
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    kvm = '/dev/kvm present (not used: ACCEL=tcg)';
  } catch {
    /* absent */
  }
  const git = (args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    commit: git(['rev-parse', '--short', 'HEAD']),
    serverSourcesDirty: git(['status', '--porcelain', '--', 'packages/server', 'packages/contract']) !== '',
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    virtualization: virt.status === 0 ? virt.stdout.trim() : 'unknown',
    node: process.version,
    qemu: qemu.stdout?.split('\n')[0] ?? 'not found',
    kvm,
    accel: 'tcg',
  };
}

// --- the server under test ---------------------------------------------------------------------
async function startServer(dataDir, { web = true } = {}) {
  const port = await freePort();
  const logFile = path.join(dataDir, 'server.log');
  const fd = fs.openSync(logFile, 'a');
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, ACCEL: 'tcg' };
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

async function stopAllVms(base, timeoutMs = 20_000) {
  const { body } = await api(base, 'GET', '/api/vms');
  const live = body.vms.filter((v) => v.status !== 'stopped');
  const r = await mapLimit(live, 64, (v) => api(base, 'POST', `/api/vms/${v.id}/stop`, undefined, 200, { timeoutMs }));
  return r.filter((x) => !x.ok).length;
}

// --- 4. console relay in isolation (no QEMU): run first, on a quiet machine ----------------------
async function benchRelay() {
  const S = (results.sections.relay = {});
  const echo = await forkHelper(path.join(root, 'bench/tcp-server.mjs'), ['echo']);
  onCleanup('echo', echo.stop);
  const relay = await forkHelper(path.join(root, 'bench/relay-server.mjs'), [String(echo.port)]);
  onCleanup('relay', relay.stop);
  const proxy = await forkHelper(path.join(root, 'bench/tcp-server.mjs'), ['proxy', String(echo.port)]);
  onCleanup('proxy', proxy.stop);
  const url = `ws://127.0.0.1:${relay.port}/api/vnc/${FAKE_VM}`;
  const totalBytes = CFG.relayMiB * MiB;

  // Warm-up (JIT, socket buffers), then interleaved rounds.
  for (const [k, t] of [['tcp', echo.port], ['tcp', proxy.port], ['ws', url]]) await echoThroughput(k, t, { totalBytes: 16 * MiB });
  const thr = { direct: [], tcpProxy: [], relay: [], relayCpuMsPerMiB: [], proxyCpuMsPerMiB: [] };
  for (let i = 0; i < CFG.relayRounds; i++) {
    thr.direct.push((await echoThroughput('tcp', echo.port, { totalBytes })).mibPerS);
    let c0 = (await proxy.ask('stats')).cpu;
    thr.tcpProxy.push((await echoThroughput('tcp', proxy.port, { totalBytes })).mibPerS);
    thr.proxyCpuMsPerMiB.push(((await proxy.ask('stats')).cpu - c0) / 1000 / CFG.relayMiB);
    c0 = (await relay.ask('stats')).cpu;
    thr.relay.push((await echoThroughput('ws', url, { totalBytes })).mibPerS);
    thr.relayCpuMsPerMiB.push(((await relay.ask('stats')).cpu - c0) / 1000 / CFG.relayMiB);
  }
  S.throughputMiBs = thr;
  log(`relay throughput MiB/s: direct ${thr.direct.map((x) => fmt(x)).join(' ')} | tcp proxy ${thr.tcpProxy.map((x) => fmt(x)).join(' ')} | ws relay ${thr.relay.map((x) => fmt(x)).join(' ')}`);

  const rtt = { direct: [], tcpProxy: [], relay: [] };
  for (let i = 0; i < CFG.relayRounds; i++) {
    rtt.direct.push(await echoRtt('tcp', echo.port, { count: CFG.pings }));
    rtt.tcpProxy.push(await echoRtt('tcp', proxy.port, { count: CFG.pings }));
    rtt.relay.push(await echoRtt('ws', url, { count: CFG.pings }));
  }
  S.rttMicros = rtt;
  log(`relay RTT p50 µs: direct ${rtt.direct.map((x) => fmt(x.p50)).join(' ')} | tcp proxy ${rtt.tcpProxy.map((x) => fmt(x.p50)).join(' ')} | ws relay ${rtt.relay.map((x) => fmt(x.p50)).join(' ')}`);
  await Promise.all([relay.stop(), proxy.stop(), echo.stop()]);

  // One way, VNC → browser (the direction framebuffer updates take; no client masking involved).
  const src = await forkHelper(path.join(root, 'bench/tcp-server.mjs'), ['source']);
  onCleanup('stream source', src.stop);
  const srcRelay = await forkHelper(path.join(root, 'bench/relay-server.mjs'), [String(src.port)]);
  onCleanup('stream relay', srcRelay.stop);
  const srcProxy = await forkHelper(path.join(root, 'bench/tcp-server.mjs'), ['proxy', String(src.port)]);
  onCleanup('stream proxy', srcProxy.stop);
  const srcUrl = `ws://127.0.0.1:${srcRelay.port}/api/vnc/${FAKE_VM}`;
  const streamBytes = 2 * totalBytes;
  const stream = { direct: [], tcpProxy: [], relay: [] };
  for (let i = 0; i < CFG.relayRounds; i++) {
    stream.direct.push((await sinkThroughput('tcp', src.port, { totalBytes: streamBytes })).mibPerS);
    stream.tcpProxy.push((await sinkThroughput('tcp', srcProxy.port, { totalBytes: streamBytes })).mibPerS);
    stream.relay.push((await sinkThroughput('ws', srcUrl, { totalBytes: streamBytes })).mibPerS);
  }
  S.streamMiBs = stream;
  log(`relay one-way stream MiB/s: direct ${stream.direct.map((x) => fmt(x)).join(' ')} | tcp proxy ${stream.tcpProxy.map((x) => fmt(x)).join(' ')} | ws relay ${stream.relay.map((x) => fmt(x)).join(' ')}`);
  await Promise.all([srcRelay.stop(), srcProxy.stop(), src.stop()]);

  // Slow client: the VNC side streams as fast as it can; the browser stops reading for 2 s.
  const source = await forkHelper(path.join(root, 'bench/tcp-server.mjs'), ['source']);
  onCleanup('source', source.stop);
  const relay2 = await forkHelper(path.join(root, 'bench/relay-server.mjs'), [String(source.port)]);
  onCleanup('relay2', relay2.stop);
  S.slowClient = await slowClient(`ws://127.0.0.1:${relay2.port}/api/vnc/${FAKE_VM}`, {
    relayStats: (m = 'stats') => relay2.ask(m),
    sourceStats: () => source.ask('stats'),
    stallMs: 2000,
  });
  log(`slow client: max bufferedAmount ${fmt(S.slowClient.maxBufferedMiB)} MiB, relay RSS +${fmt(S.slowClient.relayRssGrowthMiB)} MiB, source pushed ${fmt(S.slowClient.sourceBytesDuringStallMiB)} MiB in ${fmt(S.slowClient.stallSeconds)} s; resumed at ${fmt(S.slowClient.resumedMiBs)} MiB/s`);
  await Promise.all([relay2.stop(), source.stop()]);
}

// --- 1 + 2. start / stop latency: API vs the same command line by hand ---------------------------
async function benchStartStop(base, dataDir) {
  const S = (results.sections.startStop = { api: { start: [], stop: [] }, byHand: { start: [], stop: [] } });
  // What one API round trip costs here at all: sequential GET /api/health on a kept-alive connection.
  const rt = [];
  for (let i = 0; i < 60; i++) rt.push((await api(base, 'GET', '/api/health')).ms);
  S.httpRoundTripMs = summary(rt.slice(10));
  const { body } = await api(base, 'POST', '/api/vms', { name: 'bench-startstop', cpus: 1, memory: CFG.memoryMiB }, 201);
  const vm = body.vm;
  const runDir = path.join(dataDir, 'run', vm.id);
  const handDir = path.join(dataDir, 'by-hand');
  let hand = null;
  let live = null;
  onCleanup('by-hand qemu', async () => {
    if (live) await handStop(live).catch(() => {});
  });

  const viaApi = async (record) => {
    const s = await api(base, 'POST', `/api/vms/${vm.id}/start`, undefined, 200);
    if (s.body.vm.status !== 'running') throw new Error(`start answered with status ${s.body.vm.status}`);
    if (!hand) {
      hand = handArgv(s.body.command, runDir, handDir);
      const ids = s.body.vm.pid ? processIds(s.body.vm.pid) : null;
      prepareDir(hand, ids);
      S.command = s.body.command;
      S.qemuIds = ids;
      S.daemonize = hand.daemonize;
    }
    const t = await api(base, 'POST', `/api/vms/${vm.id}/stop`, undefined, 200);
    if (record) {
      S.api.start.push(s.ms);
      S.api.stop.push(t.ms);
    }
  };
  const byHand = async (record) => {
    live = await handStart(hand);
    const startMs = live.ms;
    const stopMs = await handStop(live);
    live = null;
    if (record) {
      S.byHand.start.push(startMs);
      S.byHand.stop.push(stopMs);
    }
  };
  await viaApi(false); // warm-up; also yields the command line
  await byHand(false);
  for (let i = 0; i < CFG.startStopRuns; i++) {
    if (i % 2 === 0) {
      await viaApi(true);
      await byHand(true);
    } else {
      await byHand(true);
      await viaApi(true);
    }
  }
  log(`start ms: api ${fmt(median(S.api.start))} by hand ${fmt(median(S.byHand.start))}; stop ms: api ${fmt(median(S.api.stop))} by hand ${fmt(median(S.byHand.stop))}; HTTP round trip p50 ${fmt(S.httpRoundTripMs.p50)} ms`);

  const virsh = spawnSync('sh', ['-c', 'command -v virsh'], { encoding: 'utf8' });
  S.virsh = virsh.status === 0 ? 'virsh found, but no libvirt domain comparison is implemented' : 'skipped: virsh not installed';
  return vm;
}

// --- 3, 4 (console open), 5: 1,000 VMs --------------------------------------------------------
async function defineVms(base, existing) {
  const n = CFG.vms - existing;
  const names = Array.from({ length: n }, (_, i) => `bench-${String(i).padStart(4, '0')}`);
  const t0 = nowMs();
  const r = await mapLimit(names, 4, (name) => api(base, 'POST', '/api/vms', { name, cpus: 1, memory: CFG.memoryMiB }, 201));
  const seconds = (nowMs() - t0) / 1000;
  const failed = r.filter((x) => !x.ok);
  if (failed.length) throw new Error(`${failed.length} creates failed, e.g. ${failed[0].error.message}`);
  const lat = r.map((x) => x.value.ms);
  results.sections.define = { count: n, seconds, perSecond: n / seconds, latencyMs: summary(lat) };
  log(`defined ${n} VMs in ${fmt(seconds)} s (create p50 ${fmt(median(lat))} ms, p99 ${fmt(percentile(lat, 99))} ms)`);
  return r.map((x) => x.value.body.vm);
}

async function startMany(base, vms) {
  const t0 = nowMs();
  const r = await Promise.all(
    vms.map((vm) =>
      api(base, 'POST', `/api/vms/${vm.id}/start`, undefined, 200, { timeoutMs: 120_000 }).then(
        (x) => ({ ok: x.body.vm.status === 'running', ms: x.ms, status: x.body.vm.status }),
        (err) => ({ ok: false, error: err.message }),
      ),
    ),
  );
  return { seconds: (nowMs() - t0) / 1000, failures: r.filter((x) => !x.ok), latencyMs: summary(r.filter((x) => x.ok).map((x) => x.ms)) };
}

async function stopMany(base, vms) {
  const t0 = nowMs();
  const r = await Promise.all(
    vms.map((vm) =>
      api(base, 'POST', `/api/vms/${vm.id}/stop`, undefined, 200, { timeoutMs: 60_000 }).then(
        (x) => ({ ok: true, ms: x.ms }),
        (err) => ({ ok: false, error: err.message }),
      ),
    ),
  );
  return { seconds: (nowMs() - t0) / 1000, failures: r.filter((x) => !x.ok), latencyMs: summary(r.filter((x) => x.ok).map((x) => x.ms)) };
}

async function benchConsoleOpen(base, vm) {
  const url = `${base.replace(/^http/, 'ws')}/api/vnc/${vm.id}`;
  // The floor of any WebSocket console: a ws server that sends the banner itself.
  const floorServer = await forkHelper(path.join(root, 'bench/relay-server.mjs'), ['banner']);
  onCleanup('ws floor', floorServer.stop);
  const floorUrl = `ws://127.0.0.1:${floorServer.port}/`;
  // The proxy module alone (plain node:http + createVncProxy) in front of the same QEMU.
  const harness = await forkHelper(path.join(root, 'bench/relay-server.mjs'), [String(vm.vnc_port)]);
  onCleanup('relay harness', harness.stop);
  const harnessUrl = `ws://127.0.0.1:${harness.port}/api/vnc/${FAKE_VM}`;
  const ours = [];
  const direct = [];
  const floor = [];
  const bare = [];
  const kinds = [['ws', url, ours], ['tcp', vm.vnc_port, direct], ['ws', floorUrl, floor], ['ws', harnessUrl, bare]];
  for (let i = 0; i < 20; i++) for (const [kind, target] of kinds) await timeToBanner(kind, target); // warm-up
  for (let i = 0; i < CFG.consoleOpens; i++) {
    for (let k = 0; k < kinds.length; k++) {
      const [kind, target, into] = kinds[(i + k) % kinds.length];
      const r = await timeToBanner(kind, target);
      if (!r.banner.startsWith('RFB ')) throw new Error(`unexpected banner ${JSON.stringify(r.banner)}`);
      into.push(r.ms);
      await sleep(2);
    }
  }
  await Promise.all([floorServer.stop(), harness.stop()]);
  results.sections.consoleOpen = {
    ourMs: summary(ours),
    directMs: summary(direct),
    wsFloorMs: summary(floor),
    proxyModuleMs: summary(bare),
    raw: { ours, direct, floor, proxyModule: bare },
  };
  log(`console open → banner ms: ours p50 ${fmt(median(ours))}, direct TCP p50 ${fmt(median(direct))}, WebSocket floor p50 ${fmt(median(floor))}, proxy module alone p50 ${fmt(median(bare))}`);
}

async function benchThroughput(base, port, dataDir) {
  const S = (results.sections.throughput = {});
  const vmsRes = await api(base, 'GET', '/api/vms');
  const healthRes = await api(base, 'GET', '/api/health');
  S.vmsResponseBytes = vmsRes.raw.length;
  S.vmsInList = vmsRes.body.vms.length;
  S.runningInList = vmsRes.body.vms.filter((v) => v.status === 'running').length;
  const spec = { routes: {} };
  for (const [p, r] of [['/api/vms', vmsRes], ['/api/health', healthRes]]) {
    const file = path.join(dataDir, `bare${p.replace(/\//g, '_')}.json`);
    fs.writeFileSync(file, r.raw);
    spec.routes[p] = { file, contentType: r.headers['content-type'] };
  }
  const specFile = path.join(dataDir, 'bare-spec.json');
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const bare = await forkHelper(path.join(root, 'bench/bare-server.mjs'), [specFile]);
  onCleanup('bare server', bare.stop);

  const load = (p, pth, ms) => runLoad({ port: p, path: pth, connections: CFG.connections, durationMs: ms });
  await load(port, '/api/vms', 1000); // warm-up (JIT)
  await load(bare.port, '/api/vms', 1000);
  const rounds = { ours: [], bare: [] };
  for (let i = 0; i < CFG.loadRounds; i++) {
    const order = i % 2 ? [['bare', bare.port], ['ours', port]] : [['ours', port], ['bare', bare.port]];
    for (const [k, p] of order) {
      const r = await load(p, '/api/vms', CFG.loadSeconds * 1000);
      if (r.errors) throw new Error(`${k}: ${r.errors} errors under load`);
      rounds[k].push(r);
    }
  }
  S.vms = rounds;
  S.serverRssAfterLoadMiB = rssKiB(results.server.pid) / 1024;
  const h = { ours: [], bare: [] };
  for (let i = 0; i < CFG.loadRounds; i++) {
    const order = i % 2 ? [['bare', bare.port], ['ours', port]] : [['ours', port], ['bare', bare.port]];
    for (const [k, p] of order) h[k].push(await load(p, '/api/health', Math.max(1, CFG.loadSeconds >> 1) * 1000));
  }
  S.health = h;
  await bare.stop();
  const rps = (rs) => median(rs.map((r) => r.rps));
  const p99 = (rs) => median(rs.map((r) => r.latencyMs.p99));
  log(`GET /api/vms (${fmt(S.vmsResponseBytes / 1024)} KiB): ours ${fmt(rps(rounds.ours))} req/s p99 ${fmt(p99(rounds.ours))} ms | bare ${fmt(rps(rounds.bare))} req/s p99 ${fmt(p99(rounds.bare))} ms`);
  log(`GET /api/health: ours ${fmt(rps(h.ours))} req/s | bare ${fmt(rps(h.bare))} req/s`);
}

// --- 6. web UI ---------------------------------------------------------------------------------
async function benchUi(base, web) {
  const S = (results.sections.ui = {});
  const dist = path.join(root, 'packages/web/dist');
  if (!fs.existsSync(path.join(dist, 'index.html'))) {
    S.skipped = 'UI not built (packages/web/dist/index.html missing)';
    log(`web UI: ${S.skipped}`);
    return;
  }
  S.js = firstLoadJs(dist);
  log(`web UI first-load JS: ${S.js.files.length} file(s), ${fmt(S.js.bytes / 1024)} KiB, gzip -9 ${fmt(S.js.gzipBytes / 1024)} KiB`);
  if (!web) {
    S.skipped = `the server did not start with the UI: ${results.serverWithUiError}`;
    log(`web UI rows: skipped: ${S.skipped}`);
    return;
  }
  let browser = null;
  onCleanup('browser', async () => browser?.close().catch(() => {}));
  const r = await timeToRows(`${base}/`, CFG.vms, { runs: CFG.uiRuns, onBrowser: (b) => (browser = b) });
  Object.assign(S, r);
  if (r.skipped) log(`web UI rows: skipped: ${r.skipped}`);
  else log(`web UI: ${CFG.vms} rows painted after ${r.times.map((x) => fmt(x)).join(' / ')} ms`);
}

// --- table ---------------------------------------------------------------------------------------
function table() {
  const s = results.sections;
  const rows = [];
  const notes = [];
  const add = (metric, ours, baseline, ratio, target, met) => rows.push({ metric, ours, baseline, ratio, target, met });
  const yes = (v) => (v === '—' ? v : v ? 'yes' : 'NO');
  const ratioRow = (metric, o, b, unit, target, ok) =>
    add(metric, `${fmt(o)} ${unit}`, `${fmt(b)} ${unit}`, `${fmt(o / b)}×`, target, yes(ok(o / b, o, b)));

  if (s.startStop) {
    const ss = s.startStop;
    ratioRow(`VM start, API vs by hand (median of ${ss.api.start.length})`, median(ss.api.start), median(ss.byHand.start), 'ms', '≤ 1.2×', (r) => r <= 1.2);
    add('VM start, virsh', 'skipped (see note)', '—', '—', '(optional)', '—');
    notes.push(`virsh: ${ss.virsh}`);
    ratioRow(`VM stop, API vs QMP quit by hand (median of ${ss.api.stop.length})`, median(ss.api.stop), median(ss.byHand.stop), 'ms', '≤ 1.3×', (r) => r <= 1.3);
    add('  one API round trip here (GET /api/health, sequential, p50)', `${fmt(ss.httpRoundTripMs.p50)} ms`, '—', '—', '(info)', '—');
  }
  if (s.throughput) {
    const t = s.throughput;
    const rps = (rs) => median(rs.map((r) => r.rps));
    const p99 = (rs) => median(rs.map((r) => r.latencyMs.p99));
    const lbl = `${t.vmsInList} VMs, ${t.runningInList} running, ${CFG.connections} conns`;
    ratioRow(`GET /api/vms req/s (${lbl}) vs bare node:http`, rps(t.vms.ours), rps(t.vms.bare), 'req/s', '≥ 0.5×', (r) => r >= 0.5);
    ratioRow('GET /api/vms p99 latency', p99(t.vms.ours), p99(t.vms.bare), 'ms', '≤ 20 ms', (_r, o) => o <= 20);
    ratioRow('GET /api/health req/s vs bare node:http', rps(t.health.ours), rps(t.health.bare), 'req/s', '(info)', () => '—');
  }
  if (s.relay) {
    const r = s.relay;
    ratioRow(`Console relay throughput, ${CFG.relayMiB} MiB echoed (WS relay vs direct TCP)`, median(r.throughputMiBs.relay), median(r.throughputMiBs.direct), 'MiB/s', '≥ 0.8×', (x) => x >= 0.8);
    ratioRow('  same, vs a bare TCP byte-pump proxy (same hops)', median(r.throughputMiBs.relay), median(r.throughputMiBs.tcpProxy), 'MiB/s', '(info)', () => '—');
    ratioRow(`  one way, VNC → browser direction, ${2 * CFG.relayMiB} MiB (WS relay vs direct TCP)`, median(r.streamMiBs.relay), median(r.streamMiBs.direct), 'MiB/s', '(info)', () => '—');
    ratioRow('  one way, vs a bare TCP byte-pump proxy', median(r.streamMiBs.relay), median(r.streamMiBs.tcpProxy), 'MiB/s', '(info)', () => '—');
    const p50 = (a) => median(a.map((x) => x.p50));
    ratioRow(`Console relay RTT p50, ${CFG.pings} × 64 B (WS relay vs direct TCP)`, p50(r.rttMicros.relay), p50(r.rttMicros.direct), 'µs', '≤ 2×', (x) => x <= 2);
    ratioRow('  same, vs a bare TCP byte-pump proxy (same hops)', p50(r.rttMicros.relay), p50(r.rttMicros.tcpProxy), 'µs', '(info)', () => '—');
    const sc = r.slowClient;
    add(
      'Slow client (2 s not reading): relay max ws.bufferedAmount / RSS growth',
      `${fmt(sc.maxBufferedMiB)} MiB / +${fmt(sc.relayRssGrowthMiB)} MiB`,
      `source pushed ${fmt(sc.sourceBytesDuringStallMiB)} MiB`,
      '—',
      'bounded (≤ 2 MiB / ≤ 16 MiB)',
      sc.maxBufferedMiB <= 2 && sc.relayRssGrowthMiB <= 16 ? 'yes' : 'NO',
    );
  }
  if (s.consoleOpen) {
    const c = s.consoleOpen;
    add(
      `Console open → RFB banner, real VM (median of ${c.ourMs.n})`,
      `${fmt(c.ourMs.p50)} ms`,
      `${fmt(c.directMs.p50)} ms`,
      `${fmt(c.ourMs.p50 / c.directMs.p50)}× (+${fmt(c.ourMs.p50 - c.directMs.p50)} ms)`,
      '≤ 1.5 ms',
      c.ourMs.p50 <= 1.5 ? 'yes' : 'NO',
    );
    add('  vs a WebSocket floor: a ws server sending the banner itself', `${fmt(c.ourMs.p50)} ms`, `${fmt(c.wsFloorMs.p50)} ms`, `${fmt(c.ourMs.p50 / c.wsFloorMs.p50)}×`, '(info)', '—');
    add('  vs the proxy module alone (node:http + createVncProxy → same QEMU)', `${fmt(c.ourMs.p50)} ms`, `${fmt(c.proxyModuleMs.p50)} ms`, `${fmt(c.ourMs.p50 / c.proxyModuleMs.p50)}×`, '(info)', '—');
  }
  if (s.define) add(`Define ${s.define.count} VMs (POST /api/vms, 4 in flight)`, `${fmt(s.define.seconds)} s`, '—', '—', '(info)', '—');
  if (s.scale) {
    const sc = s.scale;
    add(`Start ${sc.count} VMs at once through the API`, `${fmt(sc.start.seconds)} s, ${sc.start.failures.length} failed`, '—', '—', '0 failures', sc.start.failures.length === 0 && sc.runningAfter === sc.count ? 'yes' : 'NO');
    add(`Stop ${sc.count} VMs at once`, `${fmt(sc.stop.seconds)} s, ${sc.stop.failures.length} failed`, '—', '—', '0 failures', sc.stop.failures.length === 0 ? 'yes' : 'NO');
    add(
      `Server RSS, ${CFG.vms} defined + ${sc.count} running`,
      `${fmt(sc.rssAfterMiB)} MiB`,
      `${fmt(sc.rssBeforeMiB)} MiB with 0 running`,
      '—',
      '≤ 150 MiB',
      sc.rssAfterMiB <= 150 ? 'yes' : 'NO',
    );
  }
  if (s.ui) {
    const u = s.ui;
    if (u.js) add(`Web UI first-load JS, gzip -9 (${u.js.files.length} file(s))`, `${fmt(u.js.gzipBytes / 1024)} KiB`, `${fmt(u.js.bytes / 1024)} KiB raw`, '—', '(info)', '—');
    if (u.times) add(`Web UI: ${CFG.vms} VM rows painted, headless Chromium (median of ${u.times.length})`, `${fmt(median(u.times))} ms`, '—', '—', '(info)', '—');
    else {
      add('Web UI: VM rows painted', 'skipped (see note)', '—', '—', '(info)', '—');
      notes.push(`Web UI rows skipped: ${u.skipped}`);
    }
  }
  notes.push('KVM: no usable KVM here (ACCEL=tcg); start/stop baselines are TCG on both sides.');
  return { rows, notes };
}

function printTable({ rows, notes }) {
  const cols = ['metric', 'ours', 'baseline', 'ratio', 'target', 'met'];
  const head = { metric: 'metric', ours: 'ours', baseline: 'baseline', ratio: 'ratio', target: 'target', met: 'met?' };
  const w = Object.fromEntries(cols.map((c) => [c, Math.max(...[head, ...rows].map((r) => String(r[c]).length))]));
  const line = (r) => cols.map((c) => String(r[c]).padEnd(w[c])).join(' | ');
  console.log(`\n${line(head)}\n${cols.map((c) => '-'.repeat(w[c])).join('-|-')}`);
  for (const r of rows) console.log(line(r));
  for (const n of notes) console.log(`note: ${n}`);
  const md = [`| ${cols.map((c) => head[c]).join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => String(r[c]).replace(/\|/g, '\\|')).join(' | ')} |`)];
  return [...md, '', ...notes.map((n) => `- ${n}`)].join('\n');
}

// --- main ---------------------------------------------------------------------------------------
async function main() {
  const t0 = Date.now();
  log('building the server (tsc -b packages/server)…');
  const b = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/server'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('build failed');
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0) throw new Error('qemu-system-x86_64 is not installed');

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-'));
  results.dataDir = dataDir;
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

  await benchRelay();

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
    const failed = await stopAllVms(server.base);
    if (failed) console.error(`${failed} VM(s) did not stop through the API`);
  });
  onCleanup('server log', async () => {
    fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true });
    fs.copyFileSync(server.logFile, path.join(root, 'bench-results/server.log'));
  });
  log(`server pid ${server.pid} on ${server.base}, RSS ${fmt(results.server.rssIdleMiB)} MiB`);

  await benchStartStop(server.base, dataDir);

  const defined = await defineVms(server.base, 1);
  results.server.rssDefinedMiB = rssKiB(server.pid) / 1024;

  // With 1,000 VMs every VNC port of the range is assigned, so a VM whose port another program
  // holds (e.g. a test suite running meanwhile) cannot start: pick VMs whose port is free now.
  const startable = [];
  for (const vm of defined) {
    if (startable.length >= CFG.scaleRunning) break;
    if (await portFree(vm.vnc_port)) startable.push(vm);
  }
  results.sections.portsTakenByOthers = defined.indexOf(startable.at(-1)) + 1 - startable.length;

  // 10 running: throughput and console open.
  const ten = startable.slice(0, CFG.throughputRunning);
  const st = await startMany(server.base, ten);
  if (st.failures.length) throw new Error(`could not start ${st.failures.length} VMs: ${st.failures[0].error ?? st.failures[0].status}`);
  if (results.sections.portsTakenByOthers) log(`skipped ${results.sections.portsTakenByOthers} VM(s) whose VNC port another program holds`);
  const { body: listed } = await api(server.base, 'GET', '/api/vms');
  const tenPids = listed.vms.filter((v) => v.pid && ten.some((t) => t.id === v.id)).map((v) => v.pid);
  // Fresh guests spin in firmware (PXE) for a few seconds under TCG: let them go idle first, so
  // the numbers below measure the server, not a CPU shared with 10 busy vCPUs.
  const settled = await settle(tenPids);
  results.sections.settleSeconds = settled;
  log(`${ten.length} VMs running (started in ${fmt(st.seconds)} s, guests idle after ${fmt(settled.seconds)} s more; cores used per second: ${settled.cores.map((c) => fmt(c, 2)).join(' ')})`);
  const { body: one } = await api(server.base, 'GET', `/api/vms/${ten[0].id}`);
  await benchConsoleOpen(server.base, one.vm);
  await benchThroughput(server.base, server.port, dataDir);
  const st10 = await stopMany(server.base, ten);
  if (st10.failures.length) throw new Error(`could not stop ${st10.failures.length} VMs`);

  // 5. scale: 50 at once.
  const many = startable;
  await sleep(500);
  const rssBefore = rssKiB(server.pid) / 1024;
  log(`starting ${many.length} VMs at once…`);
  const start = await startMany(server.base, many);
  const { body: after } = await api(server.base, 'GET', '/api/vms');
  const runningAfter = after.vms.filter((v) => v.status === 'running').length;
  await sleep(500);
  const rssAfter = rssKiB(server.pid) / 1024;
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1]) / 1024;
  const qemuRssMiB = after.vms.filter((v) => v.pid).reduce((a, v) => a + (rssKiB(v.pid) ?? 0), 0) / 1024;
  log(`${runningAfter} running after ${fmt(start.seconds)} s (${start.failures.length} failures); server RSS ${fmt(rssBefore)} → ${fmt(rssAfter)} MiB (peak ${fmt(hwm)})`);
  const stop = await stopMany(server.base, many);
  log(`stopped ${many.length} in ${fmt(stop.seconds)} s (${stop.failures.length} failures)`);
  results.sections.scale = {
    count: many.length,
    start,
    runningAfter,
    stop,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
    rssPeakMiB: hwm,
    qemuRssTotalMiB: qemuRssMiB,
  };

  await benchUi(server.base, server.web);

  results.finishedAt = new Date().toISOString();
  results.seconds = (Date.now() - t0) / 1000;
  const t = table();
  results.table = t.rows;
  results.notes = t.notes;
  results.markdownTable = printTable(t);
  fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench-results/latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nraw results: bench-results/latest.json (${fmt(results.seconds)} s)`);
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err.stack ?? err}`);
  code = 1;
  if (Object.keys(results.sections).length) {
    fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true });
    results.error = String(err.stack ?? err);
    fs.writeFileSync(path.join(root, 'bench-results/latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  }
} finally {
  await cleanup();
  closeAgent();
}
process.exit(code);
