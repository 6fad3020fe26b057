// GET /api/vms and GET /api/health under load (bench/load.mjs), against a bare node:http server
// (bench/bare-server.mjs) answering with the very same bytes.
import fs from 'node:fs';
import path from 'node:path';
import { CFG, helper, log, results } from './context.mjs';
import { api, fmt, median, rssKiB } from './lib.mjs';
import { runLoad } from './load.mjs';

/** Median req/s and median p99 latency (ms) of load runs. */
export const rps = (rs) => median(rs.map((r) => r.rps));
export const p99 = (rs) => median(rs.map((r) => r.latencyMs.p99));

/** CFG.loadRounds rounds, ours and bare taking turns at going first; `run(key, port)` each. */
async function alternate(ours, bare, run) {
  const out = { ours: [], bare: [] };
  for (let i = 0; i < CFG.loadRounds; i++) {
    const order = i % 2 ? [['bare', bare], ['ours', ours]] : [['ours', ours], ['bare', bare]];
    for (const [k, p] of order) out[k].push(await run(k, p));
  }
  return out;
}

export async function benchThroughput(base, port, dataDir) {
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
  const bare = await helper('bare server', 'bare-server.mjs', [specFile]);

  const load = (p, pth, ms) => runLoad({ port: p, path: pth, connections: CFG.connections, durationMs: ms });
  await load(port, '/api/vms', 1000); // warm-up (JIT)
  await load(bare.port, '/api/vms', 1000);
  const rounds = await alternate(port, bare.port, async (k, p) => {
    const r = await load(p, '/api/vms', CFG.loadSeconds * 1000);
    if (r.errors) throw new Error(`${k}: ${r.errors} errors under load`);
    return r;
  });
  S.vms = rounds;
  S.serverRssAfterLoadMiB = rssKiB(results.server.pid) / 1024;
  const h = await alternate(port, bare.port, (_k, p) => load(p, '/api/health', Math.max(1, CFG.loadSeconds >> 1) * 1000));
  S.health = h;
  await bare.stop();
  log(`GET /api/vms (${fmt(S.vmsResponseBytes / 1024)} KiB): ours ${fmt(rps(rounds.ours))} req/s p99 ${fmt(p99(rounds.ours))} ms | bare ${fmt(rps(rounds.bare))} req/s p99 ${fmt(p99(rounds.bare))} ms`);
  log(`GET /api/health: ours ${fmt(rps(h.ours))} req/s | bare ${fmt(rps(h.bare))} req/s`);
}
