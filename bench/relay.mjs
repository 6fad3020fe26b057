// Console sections: the relay in isolation, no QEMU (throughput, RTT, one-way stream, slow client;
// run first, on a quiet machine), and opening a console of a real VM up to its RFB banner.
import { CFG, FAKE_VM, MiB, helper, log, results } from './context.mjs';
import { echoRtt, echoThroughput, sinkThroughput, slowClient, timeToBanner } from './console.mjs';
import { fmt, median, sleep, summary } from './lib.mjs';

/**
 * A bench/tcp-server.mjs in `mode` (echo, source) with the relay in front of it and, when
 * `names` has a third entry, a bare TCP byte-pump proxy in front of it too; `names` are the
 * cleanup task names of the three.
 */
async function behindRelay(mode, [endName, relayName, proxyName]) {
  const end = await helper(endName, 'tcp-server.mjs', [mode]);
  const relay = await helper(relayName, 'relay-server.mjs', [String(end.port)]);
  const proxy = proxyName ? await helper(proxyName, 'tcp-server.mjs', ['proxy', String(end.port)]) : null;
  const url = `ws://127.0.0.1:${relay.port}/api/vnc/${FAKE_VM}`;
  const ways = [['direct', 'tcp', end.port], ['tcpProxy', 'tcp', proxy?.port], ['relay', 'ws', url]];
  return { end, relay, proxy, url, ways, stop: () => Promise.all([relay.stop(), proxy?.stop(), end.stop()]) };
}

/** CFG.relayRounds rounds of `measure(kind, target)` over the three ways of `chain`, in turn. */
async function rounds(chain, measure) {
  const out = { direct: [], tcpProxy: [], relay: [] };
  for (let i = 0; i < CFG.relayRounds; i++) for (const [k, kind, target] of chain.ways) out[k].push(await measure(kind, target));
  return out;
}

/** `direct 1 2 3 | tcp proxy 4 5 6 | ws relay 7 8 9`, each value through `f`. */
const threeWays = (o, f = (x) => x) =>
  `direct ${o.direct.map((x) => fmt(f(x))).join(' ')} | tcp proxy ${o.tcpProxy.map((x) => fmt(f(x))).join(' ')} | ws relay ${o.relay.map((x) => fmt(f(x))).join(' ')}`;

export async function benchRelay() {
  const S = (results.sections.relay = {});
  const e = await behindRelay('echo', ['echo', 'relay', 'proxy']);
  const totalBytes = CFG.relayMiB * MiB;

  // Warm-up (JIT, socket buffers), then interleaved rounds.
  for (const [, k, t] of e.ways) await echoThroughput(k, t, { totalBytes: 16 * MiB });
  const thr = { direct: [], tcpProxy: [], relay: [], relayCpuMsPerMiB: [], proxyCpuMsPerMiB: [] };
  for (let i = 0; i < CFG.relayRounds; i++) {
    thr.direct.push((await echoThroughput('tcp', e.end.port, { totalBytes })).mibPerS);
    let c0 = (await e.proxy.ask('stats')).cpu;
    thr.tcpProxy.push((await echoThroughput('tcp', e.proxy.port, { totalBytes })).mibPerS);
    thr.proxyCpuMsPerMiB.push(((await e.proxy.ask('stats')).cpu - c0) / 1000 / CFG.relayMiB);
    c0 = (await e.relay.ask('stats')).cpu;
    thr.relay.push((await echoThroughput('ws', e.url, { totalBytes })).mibPerS);
    thr.relayCpuMsPerMiB.push(((await e.relay.ask('stats')).cpu - c0) / 1000 / CFG.relayMiB);
  }
  S.throughputMiBs = thr;
  log(`relay throughput MiB/s: ${threeWays(thr)}`);

  const rtt = await rounds(e, (kind, target) => echoRtt(kind, target, { count: CFG.pings }));
  S.rttMicros = rtt;
  log(`relay RTT p50 µs: ${threeWays(rtt, (x) => x.p50)}`);
  await e.stop();

  // One way, VNC → browser (the direction framebuffer updates take; no client masking involved).
  const src = await behindRelay('source', ['stream source', 'stream relay', 'stream proxy']);
  const streamBytes = 2 * totalBytes;
  const stream = await rounds(src, async (kind, target) => (await sinkThroughput(kind, target, { totalBytes: streamBytes })).mibPerS);
  S.streamMiBs = stream;
  log(`relay one-way stream MiB/s: ${threeWays(stream)}`);
  await src.stop();

  // Slow client: the VNC side streams as fast as it can; the browser stops reading for 2 s.
  const slow = await behindRelay('source', ['source', 'relay2']);
  S.slowClient = await slowClient(slow.url, {
    relayStats: (m = 'stats') => slow.relay.ask(m),
    sourceStats: () => slow.end.ask('stats'),
    stallMs: 2000,
  });
  log(`slow client: max bufferedAmount ${fmt(S.slowClient.maxBufferedMiB)} MiB, relay RSS +${fmt(S.slowClient.relayRssGrowthMiB)} MiB, source pushed ${fmt(S.slowClient.sourceBytesDuringStallMiB)} MiB in ${fmt(S.slowClient.stallSeconds)} s; resumed at ${fmt(S.slowClient.resumedMiBs)} MiB/s`);
  await slow.stop();
}

/** Console open → RFB banner of a running VM: ours vs direct TCP, a WebSocket floor, the proxy module alone. */
export async function benchConsoleOpen(base, vm) {
  const url = `${base.replace(/^http/, 'ws')}/api/vnc/${vm.id}`;
  // The floor of any WebSocket console: a ws server that sends the banner itself.
  const floorServer = await helper('ws floor', 'relay-server.mjs', ['banner']);
  const floorUrl = `ws://127.0.0.1:${floorServer.port}/`;
  // The proxy module alone (plain node:http + createVncProxy) in front of the same QEMU.
  const harness = await helper('relay harness', 'relay-server.mjs', [String(vm.vnc_port)]);
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
