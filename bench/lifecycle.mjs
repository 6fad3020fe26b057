// Start / stop latency of one VM: through the API vs the same command line by hand (bench/byhand.mjs),
// interleaved, after one warm-up pair each.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { handArgv, handStart, handStop, prepareDir, processIds } from './byhand.mjs';
import { CFG, log, onCleanup, results } from './context.mjs';
import { api, fmt, median, summary } from './lib.mjs';

export async function benchStartStop(base, dataDir) {
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
