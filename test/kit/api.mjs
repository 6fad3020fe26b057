// @ts-check
// A small HTTP client for the server's API: one request in, { status, headers, body, raw, ms } out.
// It never rejects on an HTTP error status (tests assert on the status); it rejects on a network
// error or after `timeoutMs`. HTTPS is accepted with the test's self-signed certificates.
import http from 'node:http';
import https from 'node:https';

/**
 * @template [T=any]
 * @typedef {object} ApiResult
 * @property {number} status
 * @property {T} body the parsed JSON, or the text when the body is not JSON
 * @property {http.IncomingHttpHeaders} headers
 * @property {Buffer} raw the body as received
 * @property {number} ms time from sending to the last byte of the answer
 */

/**
 * @typedef {object} RequestOptions
 * @property {Record<string, string>} [headers] extra request headers (they win over the defaults)
 * @property {string} [cookie] sent as the Cookie header (e.g. the session cookie from login())
 * @property {string} [token] an API token, sent as `Authorization: Bearer <token>`
 * @property {number} [timeoutMs] default 60 s
 * @property {http.Agent} [agent] e.g. a keep-alive agent with many sockets (the bench)
 */

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * One HTTP request. `path` is the full path (`/api/vms`). A `body` that is a string or bytes is
 * sent as it is; anything else as JSON. With a body, Content-Type defaults to application/json.
 * @template [T=any]
 * @param {string} base e.g. http://127.0.0.1:8080
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {RequestOptions} [opts]
 * @returns {Promise<ApiResult<T>>}
 */
export function request(base, method, path, body, { headers = {}, cookie, token, timeoutMs = 60_000, agent } = {}) {
  const url = new URL(path, base);
  /** @type {Buffer | undefined} */
  let payload;
  if (typeof body === 'string') payload = Buffer.from(body);
  else if (body instanceof Uint8Array) payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (body !== undefined) payload = Buffer.from(JSON.stringify(body));
  /** @type {Record<string, string | number>} */
  const h = {};
  if (payload) {
    h['content-type'] = 'application/json';
    h['content-length'] = payload.length;
  }
  if (cookie) h.cookie = cookie;
  if (token) h.authorization = `Bearer ${token}`;
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = v;
  const secure = url.protocol === 'https:';
  const mod = secure ? https : http;
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = mod.request(url, { method, agent, headers: h, ...(secure ? { rejectUnauthorized: false } : {}) }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const ms = nowMs() - t0;
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        /** @type {any} */
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, raw, ms });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Logs in with the admin password; resolves with the session cookie (`name=value`) to pass as
 * `cookie`. Rejects unless the login succeeds.
 * @param {string} base
 * @param {string} password
 * @returns {Promise<string>}
 */
export async function login(base, password) {
  const r = await request(base, 'POST', '/api/auth/login', { password });
  if (r.status !== 200 && r.status !== 204) throw new Error(`login failed: HTTP ${r.status} ${r.raw.toString('utf8')}`);
  const set = r.headers['set-cookie']?.[0];
  if (!set) throw new Error('login answered without a session cookie');
  return set.split(';')[0] ?? set;
}

/**
 * Stops every VM that is not stopped, through the API (`POST /api/vms/:id/stop`), at most
 * `concurrency` at a time. Resolves with how many stops did not answer 200.
 * @param {string} base
 * @param {RequestOptions & { concurrency?: number }} [opts]
 * @returns {Promise<number>}
 */
export async function stopAllVms(base, { concurrency = 1, ...opts } = {}) {
  const { status, body } = await request(base, 'GET', '/api/vms', undefined, opts);
  if (status !== 200) throw new Error(`GET /api/vms → ${status}`);
  /** @type {Array<{ id: string, status: string }>} */
  const live = (body?.vms ?? []).filter((/** @type {{ status: string }} */ v) => v.status !== 'stopped');
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < live.length) {
      const vm = live[next++];
      if (!vm) break;
      try {
        if ((await request(base, 'POST', `/api/vms/${vm.id}/stop`, undefined, opts)).status !== 200) failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, live.length) }, worker));
  return failed;
}
