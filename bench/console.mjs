// Client side of the console benchmarks: the same workloads over a WebSocket (through the relay)
// and over plain TCP (direct), so the two can be compared.
import net from 'node:net';
import WebSocket from 'ws';
import { nowMs, percentile, sleep } from './lib.mjs';

const MiB = 1024 * 1024;

export function wsOpen(url, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`WebSocket ${url} did not open`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${url} refused: HTTP ${res.statusCode}`));
    });
  });
}

function tcpOpen(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.setNoDelay(true);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A uniform byte pipe over either transport: send(buf), onData(cb), close(). */
async function pipeOf(kind, target) {
  if (kind === 'ws') {
    const ws = await wsOpen(target);
    return {
      send: (b) => ws.send(b, { binary: true }),
      onData: (cb) => ws.on('message', (d) => cb(d)),
      close: () => ws.terminate(),
    };
  }
  const s = await tcpOpen(target);
  return {
    send: (b) => s.write(b),
    onData: (cb) => s.on('data', cb),
    close: () => s.destroy(),
  };
}

/**
 * Opens a pipe and counts what arrives until `totalBytes` did; `more(p, received)` is called once
 * at the start and after every chunk short of the end. Fails with "<kind> <what> stalled" after
 * `timeoutMs`. Resolves with { seconds, received }.
 */
async function receiveAll(kind, target, what, { totalBytes, timeoutMs }, more = () => {}) {
  const p = await pipeOf(kind, target);
  let received = 0;
  try {
    return await new Promise((resolve, reject) => {
      const t0 = nowMs();
      const timer = setTimeout(() => reject(new Error(`${kind} ${what} stalled at ${received} of ${totalBytes} bytes`)), timeoutMs);
      p.onData((d) => {
        received += d.length;
        if (received >= totalBytes) {
          clearTimeout(timer);
          resolve({ seconds: (nowMs() - t0) / 1000, received });
        } else more(p, received);
      });
      more(p, received);
    });
  } finally {
    p.close();
  }
}

/**
 * Sends `totalBytes` in `chunkBytes` messages to an echo server and waits until all of it came
 * back, keeping at most `windowBytes` in flight. Returns MiB/s of payload (one way).
 */
export async function echoThroughput(kind, target, { totalBytes, chunkBytes = 64 * 1024, windowBytes = 4 * MiB, timeoutMs = 120_000 }) {
  const chunk = Buffer.alloc(chunkBytes, 0xa5);
  let sent = 0;
  const { seconds } = await receiveAll(kind, target, 'echo', { totalBytes, timeoutMs }, (p, received) => {
    while (sent < totalBytes && sent - received < windowBytes) {
      p.send(chunk);
      sent += chunk.length;
    }
  });
  return { seconds, mibPerS: totalBytes / MiB / seconds };
}

/** `count` sequential ping-pongs of `size` bytes through an echo server; latencies in µs. */
export async function echoRtt(kind, target, { count = 1000, size = 64, warmup = 50 }) {
  const p = await pipeOf(kind, target);
  const msg = Buffer.alloc(size, 0x42);
  let got = 0;
  let wake = null;
  p.onData((d) => {
    got += d.length;
    if (got >= size && wake) {
      const w = wake;
      wake = null;
      w();
    }
  });
  const rtts = [];
  try {
    for (let i = 0; i < warmup + count; i++) {
      got = 0;
      const done = new Promise((r) => {
        wake = r;
      });
      const t0 = nowMs();
      p.send(msg);
      await done;
      if (i >= warmup) rtts.push((nowMs() - t0) * 1000);
    }
  } finally {
    p.close();
  }
  return { n: rtts.length, p50: percentile(rtts, 50), p90: percentile(rtts, 90), p99: percentile(rtts, 99) };
}

/** Time (ms) from starting to connect until the first bytes (the RFB banner) arrive. */
export function timeToBanner(kind, target, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${kind}: no banner within ${timeoutMs} ms`)), timeoutMs);
    let closeIt = () => {};
    const finish = (err, data) => {
      if (done) return;
      done = true;
      const ms = nowMs() - t0;
      clearTimeout(timer);
      closeIt();
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve({ ms, banner: data.toString('latin1', 0, 12) });
    };
    if (kind === 'ws') {
      const ws = new WebSocket(target, ['binary'], { perMessageDeflate: false });
      closeIt = () => ws.terminate();
      ws.once('message', (d) => finish(null, d));
      ws.once('error', (e) => finish(e));
      ws.once('unexpected-response', (_q, res) => finish(new Error(`HTTP ${res.statusCode}`)));
    } else {
      const s = net.connect({ host: '127.0.0.1', port: target });
      closeIt = () => s.destroy();
      s.once('data', (d) => finish(null, d));
      s.once('error', (e) => finish(e));
    }
  });
}

/**
 * Slow reader: opens the relay to a server that streams as fast as it can, stops reading for
 * `stallMs`, and samples the relay process (via `relayStats()`) and the source (`sourceStats()`)
 * meanwhile. Then reads again for 1 s to show the stream resumes.
 */
export async function slowClient(url, { relayStats, sourceStats, stallMs = 2000 }) {
  const before = await relayStats('reset');
  const ws = await wsOpen(url);
  ws.pause(); // stop reading the socket: the kernel buffers fill, then the relay must hold back
  let flowing = 0;
  ws.on('message', (d) => {
    flowing += d.length;
  });
  const w0 = (await sourceStats()).written;
  let maxRss = before.rss;
  let maxBuffered = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < stallMs) {
    await sleep(100);
    const s = await relayStats();
    maxRss = Math.max(maxRss, s.rss);
    maxBuffered = Math.max(maxBuffered, s.maxBuffered);
  }
  const w1 = (await sourceStats()).written;
  const stalledFor = (Date.now() - t0) / 1000;
  ws.resume();
  const r0 = flowing;
  const t1 = nowMs();
  await sleep(1000);
  const resumedMiBs = (flowing - r0) / MiB / ((nowMs() - t1) / 1000);
  ws.terminate();
  return {
    stallSeconds: stalledFor,
    relayRssBeforeMiB: before.rss / MiB,
    relayRssMaxMiB: maxRss / MiB,
    relayRssGrowthMiB: (maxRss - before.rss) / MiB,
    maxBufferedMiB: maxBuffered / MiB,
    sourceBytesDuringStallMiB: (w1 - w0) / MiB,
    resumedMiBs,
  };
}

/** Reads `totalBytes` from a server that streams without pause (the VNC → browser direction). */
export async function sinkThroughput(kind, target, { totalBytes, timeoutMs = 120_000 }) {
  const { seconds, received } = await receiveAll(kind, target, 'stream', { totalBytes, timeoutMs });
  return { seconds, mibPerS: received / MiB / seconds };
}
