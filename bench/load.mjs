// A keep-alive HTTP/1.1 load loop (what autocannon does, without the dependency): N connections,
// each sends one GET, waits for the whole response (Content-Length), records the latency and sends
// the next, for a fixed time. No pipelining. Responses must be 200 with a Content-Length.
import net from 'node:net';
import { nowMs, percentile } from './lib.mjs';

const CRLF2 = Buffer.from('\r\n\r\n');

/**
 * @returns {Promise<{requests:number, errors:number, seconds:number, rps:number, bytes:number,
 *   latencyMs:{p50:number,p90:number,p99:number,max:number}}>}
 */
export function runLoad({ host = '127.0.0.1', port, path, connections = 10, durationMs = 5000 }) {
  const reqBuf = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: application/json\r\n\r\n`);
  const latencies = [];
  let errors = 0;
  let bytes = 0;
  let stopping = false;
  const t0 = nowMs();
  const deadline = t0 + durationMs;
  let lastDone = t0;

  const one = () =>
    new Promise((resolve) => {
      const sock = net.connect({ host, port });
      sock.setNoDelay(true);
      let head = null; // pending header bytes until the header is complete
      let need = -1; // bytes still expected of the body
      let sentAt = 0;
      const send = () => {
        if (stopping || nowMs() >= deadline) {
          stopping = true;
          sock.end();
          return;
        }
        head = null;
        need = -1;
        sentAt = nowMs();
        sock.write(reqBuf);
      };
      const fail = () => {
        errors++;
        sock.destroy();
      };
      sock.on('connect', send);
      sock.on('data', (chunk) => {
        bytes += chunk.length;
        if (need < 0) {
          head = head ? Buffer.concat([head, chunk]) : chunk;
          const end = head.indexOf(CRLF2);
          if (end === -1) return;
          const text = head.subarray(0, end).toString('latin1');
          if (!text.startsWith('HTTP/1.1 200')) return fail();
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
          if (!m) return fail();
          need = Number(m[1]) - (head.length - end - 4);
        } else {
          need -= chunk.length;
        }
        if (need === 0) {
          const t = nowMs();
          latencies.push(t - sentAt);
          lastDone = t;
          send();
        } else if (need < 0) fail(); // more bytes than announced: pipelining confusion
      });
      sock.on('error', () => errors++);
      sock.on('close', () => resolve());
    });

  return Promise.all(Array.from({ length: connections }, one)).then(() => {
    const seconds = (lastDone - t0) / 1000;
    return {
      requests: latencies.length,
      errors,
      seconds,
      rps: latencies.length / seconds,
      bytes,
      latencyMs: {
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: latencies.reduce((a, b) => Math.max(a, b), 0),
      },
    };
  });
}
