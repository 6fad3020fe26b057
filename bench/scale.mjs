// The fleet: defining CFG.vms VMs, starting and stopping many at once (the 10 that stay running
// for the console and load sections, then CFG.scaleRunning for the scale section).
import fs from 'node:fs';
import { CFG, log, results } from './context.mjs';
import { api, fmt, mapLimit, median, nowMs, percentile, portFree, rssKiB, settle, sleep, summary } from './lib.mjs';

/** Defines the VMs up to CFG.vms (POST /api/vms, 4 in flight); `existing` are there already. */
export async function defineVms(base, existing) {
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

/**
 * The first CFG.scaleRunning of `defined` whose VNC port is free now: with 1,000 VMs every VNC port
 * of the range is assigned, so a VM whose port another program holds (e.g. a test suite running
 * meanwhile) cannot start.
 */
export async function startableVms(defined) {
  const startable = [];
  for (const vm of defined) {
    if (startable.length >= CFG.scaleRunning) break;
    if (await portFree(vm.vnc_port)) startable.push(vm);
  }
  results.sections.portsTakenByOthers = defined.indexOf(startable.at(-1)) + 1 - startable.length;
  return startable;
}

/** POST /api/vms/:id/<action> for all `vms` at once; `judge(response)` says { ok, ms, … }. */
async function allAtOnce(base, vms, action, timeoutMs, judge) {
  const t0 = nowMs();
  const r = await Promise.all(
    vms.map((vm) =>
      api(base, 'POST', `/api/vms/${vm.id}/${action}`, undefined, 200, { timeoutMs }).then(judge, (err) => ({ ok: false, error: err.message })),
    ),
  );
  return { seconds: (nowMs() - t0) / 1000, failures: r.filter((x) => !x.ok), latencyMs: summary(r.filter((x) => x.ok).map((x) => x.ms)) };
}
const startMany = (base, vms) =>
  allAtOnce(base, vms, 'start', 120_000, (x) => ({ ok: x.body.vm.status === 'running', ms: x.ms, status: x.body.vm.status }));
const stopMany = (base, vms) => allAtOnce(base, vms, 'stop', 60_000, (x) => ({ ok: true, ms: x.ms }));

/**
 * Starts `vms` and waits until their guests are idle; resolves with the first one as the API shows
 * it now. Fresh guests spin in firmware (PXE) for a few seconds under TCG: let them go idle first,
 * so the numbers that follow measure the server, not a CPU shared with 10 busy vCPUs.
 */
export async function startIdle(base, vms) {
  const st = await startMany(base, vms);
  if (st.failures.length) throw new Error(`could not start ${st.failures.length} VMs: ${st.failures[0].error ?? st.failures[0].status}`);
  if (results.sections.portsTakenByOthers) log(`skipped ${results.sections.portsTakenByOthers} VM(s) whose VNC port another program holds`);
  const { body: listed } = await api(base, 'GET', '/api/vms');
  const pids = listed.vms.filter((v) => v.pid && vms.some((t) => t.id === v.id)).map((v) => v.pid);
  const settled = await settle(pids);
  results.sections.settleSeconds = settled;
  log(`${vms.length} VMs running (started in ${fmt(st.seconds)} s, guests idle after ${fmt(settled.seconds)} s more; cores used per second: ${settled.cores.map((c) => fmt(c, 2)).join(' ')})`);
  const { body: one } = await api(base, 'GET', `/api/vms/${vms[0].id}`);
  return one.vm;
}

export async function stopAll(base, vms) {
  const st = await stopMany(base, vms);
  if (st.failures.length) throw new Error(`could not stop ${st.failures.length} VMs`);
}

/** `many` VMs started at once, the server's RSS before and after, then all stopped at once. */
export async function benchScale(server, many) {
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
}
