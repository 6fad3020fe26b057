/**
 * Login rate limit against real servers: a burst of concurrent wrong passwords is counted before any
 * is checked, and X-Forwarded-For is believed only from configured proxies.
 *
 * On loopback every peer is a loopback address, so TRUST_PROXY=<hops> (which trusts a proxy on this
 * host) cannot tell a local proxy from a local client; what is testable here: with a CIDR list, a
 * client connecting from 127.0.0.2 is not the proxy 127.0.0.1/32 and its X-Forwarded-For is ignored;
 * through a proxy, only the address the proxy appended counts, whatever the client put before it.
 * A non-loopback peer under TRUST_PROXY=1 is covered in packages/server/src/config.test.ts.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir } from './harness.js';

const PASSWORD = 'correct horse battery staple';

interface Res {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
}

function login(s: TestServer, password: string, opts: { from?: string; xff?: string } = {}): Promise<Res> {
  const body = JSON.stringify({ password });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: s.port,
        method: 'POST',
        path: '/api/auth/login',
        agent: false,
        ...(opts.from ? { localAddress: opts.from } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          ...(opts.xff ? { 'x-forwarded-for': opts.xff } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = JSON.parse(text).code;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], code });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const count = (rs: Res[], status: number) => rs.filter((r) => r.status === status).length;

async function sequential(n: number, f: (i: number) => Promise<Res>): Promise<Res[]> {
  const out: Res[] = [];
  for (let i = 0; i < n; i++) out.push(await f(i));
  return out;
}

describe('a burst of concurrent wrong passwords', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD }).start();
  });
  afterAll(() => s.dispose());

  it('has at most 5 passwords checked, and then the right password is refused too', async () => {
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => login(s, `guess-${i}`)));
    const verified = count(burst, 401);
    expect(verified).toBeGreaterThanOrEqual(1);
    expect(verified).toBeLessThanOrEqual(5);
    expect(count(burst, 429)).toBe(40 - verified);
    for (const r of burst.filter((x) => x.status === 429)) {
      expect(r.code).toBe('RATE_LIMITED');
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    // A second, larger burst, then one at a time until refused: never more than 5 checked in all.
    // (200: below MAX_CONNECTIONS_PER_CLIENT, 256, so no connection of the burst is refused for its count)
    const burst2 = await Promise.all(Array.from({ length: 200 }, (_, i) => login(s, `again-${i}`)));
    const after = await sequential(10, (i) => login(s, `slow-${i}`));
    expect(verified + count(burst2, 401) + count(after, 401)).toBe(5);
    expect(after.at(-1)!.status).toBe(429);

    const right = await login(s, PASSWORD);
    expect(right.status).toBe(429);
    expect(right.code).toBe('RATE_LIMITED');
    expect(Number(right.retryAfter)).toBeGreaterThan(1);
    expect(Number(right.retryAfter)).toBeLessThanOrEqual(60);
  });
});

describe('TRUST_PROXY=127.0.0.1/32', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD, TRUST_PROXY: '127.0.0.1/32' }).start();
  });
  afterAll(() => s.dispose());

  it('a client that is not the proxy cannot escape the limit with a rotating X-Forwarded-For', async () => {
    const rs = await sequential(20, (i) => login(s, `guess-${i}`, { from: '127.0.0.2', xff: `198.51.100.${i + 1}` }));
    expect(count(rs, 401)).toBe(5);
    expect(count(rs, 429)).toBe(15);
    expect((await login(s, PASSWORD, { from: '127.0.0.2', xff: '192.0.2.200' })).status).toBe(429);
  });

  it('through the proxy, only the address it appended counts; its other clients are told apart', async () => {
    const rs = await sequential(20, (i) => login(s, `guess-${i}`, { from: '127.0.0.1', xff: `198.51.100.${i + 1}, 203.0.113.7` }));
    expect(count(rs, 401)).toBe(5);
    expect(count(rs, 429)).toBe(15);
    // Another client of the same proxy is not locked out by the first one.
    expect((await login(s, PASSWORD, { from: '127.0.0.1', xff: '203.0.113.8' })).status).toBe(200);
  });
});

describe('TRUST_PROXY=1 (one proxy on this host)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD, TRUST_PROXY: '1' }).start();
  });
  afterAll(() => s.dispose());

  it('only the last hop counts: forged entries before it do not escape the limit', async () => {
    const rs = await sequential(20, (i) => login(s, `guess-${i}`, { xff: `10.0.${i}.1, 203.0.113.9` }));
    expect(count(rs, 401)).toBe(5);
    expect(count(rs, 429)).toBe(15);
    expect((await login(s, PASSWORD, { xff: '203.0.113.10' })).status).toBe(200);
  });
});
