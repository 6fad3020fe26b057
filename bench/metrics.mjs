// Sampling cost row (issue 14): the server's CPU (share of one core) over a window with
// BENCH_METRICS_VMS (default BENCH_SCALE, 50) idle VMs running and sampled at the default
// 5 s interval, against the same server over the same window with none running.
import { CFG, log, results } from './context.mjs';
import { api, cpuTicks, fmt, nowMs, sleep } from './lib.mjs';
import { startIdle, stopAll } from './scale.mjs';

const WINDOW_S = (() => {
  const v = Number.parseInt(process.env.BENCH_METRICS_WINDOW_S ?? '', 10);
  return Number.isInteger(v) && v >= 5 && v <= 600 ? v : 30;
})();
const COUNT = (() => {
  const v = Number.parseInt(process.env.BENCH_METRICS_VMS ?? '', 10);
  return Number.isInteger(v) && v > 0 && v <= 1000 ? v : CFG.scaleRunning;
})();

/** The server's CPU over WINDOW_S seconds, in % of one core (USER_HZ ticks = 1/100 s). */
async function serverCpu(pid) {
  const t0 = nowMs();
  const a = cpuTicks(pid);
  await sleep(WINDOW_S * 1000);
  const b = cpuTicks(pid);
  return (b - a) / ((nowMs() - t0) / 1000); // ticks per second = % of one core
}

export async function benchMetrics(server) {
  const { body: listed } = await api(server.base, 'GET', '/api/vms');
  let vms = listed.vms.filter((v) => v.status === 'stopped').slice(0, COUNT);
  if (vms.length < COUNT) {
    for (let i = vms.length; i < COUNT; i++) vms.push((await api(server.base, 'POST', '/api/vms', { name: `bench-metrics-${i}`, cpus: 1, memory: CFG.memoryMiB }, 201)).body.vm);
  }
  vms = vms.slice(0, COUNT);
  log(`metrics: server CPU with no VM running, ${WINDOW_S} s…`);
  const idle = await serverCpu(server.pid);
  await startIdle(server.base, vms);
  await sleep(6000); // one full sampling interval with every VM in it
  log(`metrics: server CPU with ${vms.length} VMs running and sampled every 5 s, ${WINDOW_S} s…`);
  const sampled = await serverCpu(server.pid);
  const { body: sum } = await api(server.base, 'GET', '/api/metrics/summary');
  const seen = sum.vms.filter((v) => vms.some((x) => x.id === v.id) && v.cpuPercent !== null).length;
  await stopAll(server.base, vms);
  results.sections.metrics = { count: vms.length, windowSeconds: WINDOW_S, idlePercent: idle, sampledPercent: sampled, vmsWithSamples: seen };
  log(`metrics: server ${fmt(sampled, 2)} % of one core with ${vms.length} sampled (${seen} with a CPU sample), ${fmt(idle, 2)} % with none`);
}

export function metricsRows(m, add) {
  if (!m) return;
  add(
    `Metrics sampling: server CPU with ${m.count} running VMs sampled every 5 s (${m.windowSeconds} s window; ${m.vmsWithSamples} with samples) vs none running`,
    `${fmt(m.sampledPercent, 2)} % of a core`,
    `${fmt(m.idlePercent, 2)} %`,
    `+${fmt(m.sampledPercent - m.idlePercent, 2)} points`,
    '≤ 2 %',
    m.sampledPercent <= 2 ? 'yes' : 'NO',
  );
}
