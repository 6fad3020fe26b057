// The summary table (ours vs baseline vs target, one row per metric), printed to the terminal and
// stored with the raw results in bench-results/latest.json.
import fs from 'node:fs';
import path from 'node:path';
import { p99, rps } from './api-load.mjs';
import { backupRows } from './backup.mjs';
import { cloudImageRows } from './cloud-image.mjs';
import { metricsRows } from './metrics.mjs'; // sampling cost row (issue 14)
import { serialRows } from './serial.mjs'; // serial console (issue 14)
import { CFG, results, root } from './context.mjs';
import { fmt, median } from './lib.mjs';

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
  // Storage rows (bench/storage.mjs)
  if (s.storage) {
    const st = s.storage;
    if (st.fullClone) {
      const f = st.fullClone;
      const src = st.source;
      const o = median(f.api);
      const b = median(f.byHand);
      add(
        `Full clone, ${fmt(src.virtualBytes / 2 ** 30)} GiB ${src.format} (${fmt(src.allocatedBytes / 2 ** 20)} MiB allocated), API → task done vs qemu-img convert by hand (median of ${f.api.length})`,
        `${fmt(o)} ms`,
        `${fmt(b)} ms`,
        `${fmt(b / o)}× (by hand / API)`,
        '≥ 0.9×',
        yes(b / o >= 0.9),
      );
      add('  same, the task\'s own createdAt → endedAt', `${fmt(median(f.apiServer))} ms`, '—', '—', '(info)', '—');
      if (f.byHandOverNbd?.length) {
        const n = median(f.byHandOverNbd);
        add('  vs the server\'s read path by hand (qemu-nbd raw export + qemu-img convert over NBD)', `${fmt(o)} ms`, `${fmt(n)} ms`, `${fmt(n / o)}× (by hand / API)`, '(info)', '—');
      }
    }
    if (st.linkedClone) {
      const l = st.linkedClone;
      add(`Linked clone, request → task succeeded event (p50 of ${l.api.length})`, `${fmt(median(l.api))} ms`, `${fmt(median(l.byHand))} ms (qemu-img create by hand)`, '—', '≤ 50 ms', yes(median(l.api) <= 50));
      add('  same, p90 / max; the 202 answer alone (p50)', `${fmt(l.summary.p90)} / ${fmt(l.summary.max)} ms; ${fmt(median(l.answer))} ms`, '—', '—', '(info)', '—');
    }
    if (st.upload) {
      const u = st.upload;
      ratioRow(`Disk upload, ${CFG.uploadMiB} MiB raw (PUT /api/disks/upload vs bare node:http sink to a file, median of ${u.oursMiBs.length})`, median(u.oursMiBs), median(u.bareMiBs), 'MiB/s', '≥ 0.8×', (r) => r >= 0.8);
    }
    if (st.snapshot) {
      const sn = st.snapshot;
      const mem = `${fmt(median(sn.vmStateBytes) / 2 ** 20)} MiB VM state`;
      if (sn.pause.length) {
        add(`Snapshot with memory, running 256 MiB guest: pause (vm.updated paused → running, median of ${sn.pause.length})`, `${fmt(median(sn.pause))} ms`, '—', '—', '(info: no target)', '—');
      } else {
        add('Snapshot with memory, running 256 MiB guest: pause', 'no paused/running events (see note)', '—', '—', '(info: no target)', '—');
        notes.push('snapshot: the server sent no vm.updated paused/running during snapshot-save; the task duration is the upper bound of the pause');
      }
      add(`  same, request → task succeeded (median of ${sn.task.length}; ${mem})`, `${fmt(median(sn.task))} ms`, '—', '—', '(info)', '—');
    } else if (st.skipped) {
      add('Snapshot with memory: pause', 'skipped (see note)', '—', '—', '(info)', '—');
      notes.push(`snapshot row skipped: ${st.skipped}`);
    }
  }
  backupRows(s.backup, add, yes); // backup rows (bench/backup.mjs)
  cloudImageRows(s.cloudImage, add); // image + cloud-init row (bench/cloud-image.mjs)
  metricsRows(s.metrics, add); // sampling cost row (bench/metrics.mjs, issue 14)
  serialRows(s.serial, add, yes); // serial console row (bench/serial.mjs)
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

/** Writes the results to bench-results/latest.json. */
export function writeResults() {
  fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench-results/latest.json'), `${JSON.stringify(results, null, 2)}\n`);
}

/** Stamps the end time, prints the table and writes it with the raw results. */
export function finish(t0) {
  results.finishedAt = new Date().toISOString();
  results.seconds = (Date.now() - t0) / 1000;
  const t = table();
  results.table = t.rows;
  results.notes = t.notes;
  results.markdownTable = printTable(t);
  writeResults();
  console.log(`\nraw results: bench-results/latest.json (${fmt(results.seconds)} s)`);
}
