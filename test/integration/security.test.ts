/**
 * Attack suite against real servers: DNS rebinding (foreign Host), CSRF (foreign Origin, text/plain),
 * cross-site WebSocket, missing/expired/revoked/wrong-scope tokens, console ticket reuse and tickets
 * for the wrong VM, login brute force, secrets in logs, QEMU confinement, refusal to run exposed
 * without authentication, and TLS. Every refusal is in the v1 error shape and changes nothing.
 */
import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, repoRoot, waitFor } from './harness.js';

const PASSWORD = 'correct horse battery staple';

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A raw HTTP request, so Host, Origin and Cookie can be anything. */
function raw(url: string, method: string, p: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      { host: u.hostname, port: u.port, method, path: `/api${p}`, headers: { ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, rejectUnauthorized: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/** The secret part of `qmt_<uuid>_<secret>` (the secret itself may contain `_`). */
const secretOf = (token: string) => token.match(/^qmt_[0-9a-f-]{36}_(.+)$/)![1];

function expectError(r: { status: number; body: any }, status: number, code: string) {
  expect(r.status).toBe(status);
  expect(r.body.code).toBe(code);
  expect(typeof r.body.error).toBe('string');
  expect(Date.parse(r.body.timestamp)).not.toBeNaN();
}

/** Tries a WebSocket upgrade; resolves with the HTTP status of a refusal, or 101 and the first bytes. */
function upgrade(url: string, vmId: string, opts: { ticket?: string; origin?: string } = {}): Promise<{ status: number; banner?: string }> {
  return new Promise((resolve, reject) => {
    const q = opts.ticket ? `?ticket=${encodeURIComponent(opts.ticket)}` : '';
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/vnc/${vmId}${q}`, ['binary'], {
      ...(opts.origin ? { origin: opts.origin } : {}),
      rejectUnauthorized: false,
    });
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.once('message', (d: Buffer) => {
      resolve({ status: 101, banner: d.toString('latin1') });
      ws.close();
    });
    ws.once('error', reject);
  });
}

describe('default loopback server: no credentials, but no cross-site access either', () => {
  let s: TestServer;
  let vmId: string;
  beforeAll(async () => {
    s = await new TestServer(makeDataDir()).start();
    vmId = (await s.api('POST', '/vms', { name: 'victim', cpus: 1, memory: 96 })).body.vm.id;
  });
  afterAll(() => s?.dispose());

  it('refuses a foreign Host (DNS rebinding) and accepts its own names', async () => {
    expectError(await raw(s.url, 'GET', '/vms', { host: `evil.example:${s.port}` }), 403, 'HOST_NOT_ALLOWED');
    expectError(await raw(s.url, 'POST', `/vms/${vmId}/start`, { host: 'attacker.test' }), 403, 'HOST_NOT_ALLOWED');
    expect((await raw(s.url, 'GET', '/vms', { host: `localhost:${s.port}` })).status).toBe(200);
    expect((await raw(s.url, 'GET', '/vms', { host: `127.0.0.1:${s.port}` })).status).toBe(200);
  });

  it('refuses state changes from a foreign Origin, and cross-site form posts', async () => {
    const json = { 'content-type': 'application/json' };
    const body = JSON.stringify({ name: 'csrf', cpus: 1, memory: 96 });
    expectError(await raw(s.url, 'POST', '/vms', { ...json, origin: 'https://evil.example' }, body), 403, 'ORIGIN_NOT_ALLOWED');
    expectError(await raw(s.url, 'POST', '/vms', { ...json, origin: 'null' }, body), 403, 'ORIGIN_NOT_ALLOWED');
    expectError(await raw(s.url, 'DELETE', `/vms/${vmId}`, { origin: `http://localhost.evil.example:${s.port}` }), 403, 'ORIGIN_NOT_ALLOWED');
    expectError(await raw(s.url, 'POST', '/vms', { 'content-type': 'text/plain', origin: 'https://evil.example' }, body), 403, 'ORIGIN_NOT_ALLOWED');
    expectError(await raw(s.url, 'POST', '/vms', { 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' }, body), 403, 'ORIGIN_NOT_ALLOWED');
    expect((await raw(s.url, 'POST', '/vms', { 'content-type': 'text/plain' }, body)).status).toBe(415);
    const names = (await s.api('GET', '/vms')).body.vms.map((v: any) => v.name);
    expect(names).toEqual(['victim']);
    const same = await raw(s.url, 'POST', '/vms', { ...json, origin: s.url }, body);
    expect(same.status).toBe(201);
  });

  it('grants no CORS', async () => {
    const r = await raw(s.url, 'GET', '/vms', { origin: 'https://evil.example' });
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await raw(s.url, 'OPTIONS', '/vms', { origin: 'https://evil.example', 'access-control-request-method': 'POST' });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses a cross-site WebSocket to a console', async () => {
    await s.api('POST', `/vms/${vmId}/start`);
    expect((await upgrade(s.url, vmId, { origin: 'https://evil.example' })).status).toBe(403);
    const ok = await upgrade(s.url, vmId, { origin: s.url });
    expect(ok.status).toBe(101);
    expect(ok.banner).toMatch(/^RFB/);
  });

  it('records consoles in the audit log with their real outcome', async () => {
    const cold = (await s.api('POST', '/vms', { name: 'cold', cpus: 1, memory: 96 })).body.vm;
    expect((await upgrade(s.url, cold.id)).status).toBe(409);
    expect((await upgrade(s.url, vmId)).status).toBe(101);
    await new Promise((r) => setTimeout(r, 50));
    const e = (await s.api('GET', '/audit')).body.entries as any[];
    const consoles = e.filter((x) => x.action === 'CONSOLE /api/vnc/:vm_id');
    expect(consoles.find((x) => x.target === cold.id)?.status).toBe(409);
    expect(consoles.find((x) => x.target === vmId)?.status).toBe(101);
    expect(consoles.every((x) => x.actor === 'local')).toBe(true);
  });

  it('runs QEMU under the seccomp sandbox, and as an unprivileged user when root', async () => {
    const vm = (await s.api('GET', `/vms/${vmId}`)).body.vm;
    const status = fs.readFileSync(`/proc/${vm.pid}/status`, 'utf8');
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    const uid = Number(status.match(/^Uid:\s+(\d+)/m)![1]);
    if (process.getuid!() === 0) {
      expect(uid).not.toBe(0);
      const name = execFileSync('id', ['-nu', String(uid)], { encoding: 'utf8' }).trim();
      expect(name).toMatch(/^qm-vm-\d+$/);
      expect(fs.statSync(path.join(s.dataDir, 'run', vmId, 'qemu')).uid).toBe(uid);
      expect(fs.statSync(path.join(s.dataDir, 'run', vmId)).uid).toBe(0);
    } else {
      expect(uid).toBe(process.getuid!());
    }
    expect(vm.lastCommand).toContain('-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  });
});

describe('each running VM has its own QEMU user; images stay root-owned and reach QEMU as descriptors', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await new TestServer(makeDataDir()).start();
  });
  afterAll(() => s?.dispose());

  const uidOf = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]);

  async function vmWithDisk(name: string) {
    const d = (await s.api('POST', '/disks', { name: `${name}-disk`, size: 1, format: 'qcow2' })).body.disk;
    const disk = await waitFor(async () => {
      const x = (await s.api('GET', `/disks/${d.id}`)).body.disk;
      return x.status === 'ready' && x;
    }, 10_000, 'disk ready');
    const vm = (await s.api('POST', '/vms', { name, cpus: 1, memory: 96 })).body.vm;
    await s.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path });
    return { vm, disk };
  }

  it.runIf(process.getuid?.() === 0)('gives each running VM its own user and a QEMU directory of its own, never its images', async () => {
    const a = await vmWithDisk('owner-a');
    const b = await vmWithDisk('owner-b');
    const st0 = fs.statSync(a.disk.path);
    expect(st0.mode & 0o777).toBe(0o600);
    expect(st0.uid).toBe(0);
    const uidA = uidOf((await s.api('POST', `/vms/${a.vm.id}/start`)).body.vm.pid);
    const uidB = uidOf((await s.api('POST', `/vms/${b.vm.id}/start`)).body.vm.pid);
    expect(uidA).not.toBe(0);
    expect(uidB).not.toBe(0);
    expect(uidA).not.toBe(uidB); // one QEMU cannot open the other's images
    expect(fs.statSync(a.disk.path).uid).toBe(0);
    expect(fs.statSync(b.disk.path).uid).toBe(0);
    expect(fs.statSync(path.join(s.dataDir, 'run', a.vm.id, 'qemu')).uid).toBe(uidA);
    expect(fs.statSync(path.join(s.dataDir, 'run', b.vm.id, 'qemu')).uid).toBe(uidB);
    expect(fs.statSync(path.join(s.dataDir, 'run', a.vm.id)).uid).toBe(0);
    expect((await s.api('POST', `/vms/${a.vm.id}/stop`)).status).toBe(200);
    expect(fs.statSync(a.disk.path).uid).toBe(0);
    expect(fs.existsSync(path.join(s.dataDir, 'run', a.vm.id, 'qemu'))).toBe(false);
    // the freed user is reused by the next start
    expect(uidOf((await s.api('POST', `/vms/${a.vm.id}/start`)).body.vm.pid)).toBe(uidA);
    for (const x of [a, b]) expect((await s.api('POST', `/vms/${x.vm.id}/stop`)).status).toBe(200);
  });
});

describe('authentication required', () => {
  let s: TestServer;
  let vmA: string;
  let vmB: string;
  let cookie: string;
  let admin: { token: string; id: string };
  let reader: { token: string; id: string };

  beforeAll(async () => {
    s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD, LOG_LEVEL: 'debug' }).start();
  });
  afterAll(async () => {
    if (admin) for (const id of [vmA, vmB].filter(Boolean)) await s.api('POST', `/vms/${id}/stop`, undefined, { authorization: `Bearer ${admin.token}` });
    await s.dispose();
  });

  it('refuses every API call without credentials, except the auth status and a bare health check', async () => {
    const health = await s.api('GET', '/health');
    expect(health.status).toBe(200);
    expect(Object.keys(health.body).sort()).toEqual(['status', 'timestamp']);
    for (const [m, p] of [['GET', '/vms'], ['GET', '/disks'], ['POST', '/vms'], ['GET', '/events'], ['GET', '/audit'], ['GET', '/tokens']] as const) {
      expectError(await raw(s.url, m, p), 401, 'UNAUTHORIZED');
    }
    const st = await s.api('GET', '/auth/status');
    expect(st.body).toEqual({ authRequired: true, authenticated: false, actor: null, scope: null });
  });

  it('logs in with the password: an HttpOnly, SameSite=Strict session cookie', async () => {
    expectError(await s.api('POST', '/auth/login', { password: 'wrong' }), 401, 'UNAUTHORIZED');
    const r = await raw(s.url, 'POST', '/auth/login', { 'content-type': 'application/json' }, JSON.stringify({ password: PASSWORD }));
    expect(r.status).toBe(200);
    const set = String(r.headers['set-cookie']);
    expect(set).toMatch(/^qm_session=[A-Za-z0-9_-]{43};/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).not.toContain('Secure'); // no TLS here
    cookie = set.split(';')[0]!;
    const vms = await raw(s.url, 'GET', '/vms', { cookie });
    expect(vms.status).toBe(200);
    const created = await raw(s.url, 'POST', '/vms', { cookie, 'content-type': 'application/json' }, JSON.stringify({ name: 'a', cpus: 1, memory: 96 }));
    expect(created.status).toBe(201);
    vmA = created.body.vm.id;
    expectError(await raw(s.url, 'GET', '/vms', { cookie: 'qm_session=forged' }), 401, 'UNAUTHORIZED');
  });

  it('API tokens: shown once, stored hashed, scoped, revocable, expiring, last use recorded', async () => {
    const mk = async (body: object) => (await raw(s.url, 'POST', '/tokens', { cookie, 'content-type': 'application/json' }, JSON.stringify(body))).body;
    admin = await mk({ name: 'ci admin', scope: 'admin' });
    reader = await mk({ name: 'grafana', scope: 'read', expiresIn: 3600 });
    expect(admin.token).toMatch(/^qmt_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/);
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

    expect((await s.api('GET', '/vms', undefined, bearer(reader.token))).status).toBe(200);
    expectError(await s.api('POST', '/vms', { name: 'nope', cpus: 1, memory: 96 }, bearer(reader.token)), 403, 'FORBIDDEN');
    expectError(await s.api('GET', '/tokens', undefined, bearer(reader.token)), 403, 'FORBIDDEN');
    expectError(await s.api('GET', '/audit', undefined, bearer(reader.token)), 403, 'FORBIDDEN');
    const b = await s.api('POST', '/vms', { name: 'b', cpus: 1, memory: 96 }, bearer(admin.token));
    expect(b.status).toBe(201);
    vmB = b.body.vm.id;

    expectError(await s.api('GET', '/vms', undefined, bearer(admin.token.slice(0, -1) + 'x')), 401, 'UNAUTHORIZED');
    expectError(await s.api('GET', '/vms', undefined, bearer('qmt_garbage')), 401, 'UNAUTHORIZED');

    const list = (await s.api('GET', '/tokens', undefined, bearer(admin.token))).body.tokens;
    expect(list.map((t: any) => t.name).sort()).toEqual(['ci admin', 'grafana']);
    expect(JSON.stringify(list)).not.toContain(secretOf(admin.token));
    expect(list.find((t: any) => t.name === 'grafana').lastUsedAt).not.toBeNull();

    // stored hashed: the secret appears nowhere in the database file
    const db = new Database(path.join(s.dataDir, 'db.sqlite'));
    const rows = JSON.stringify(db.prepare('SELECT * FROM tokens').all());
    expect(rows).not.toContain(secretOf(admin.token));
    expect(rows).not.toContain(secretOf(reader.token));
    // expire the read token (as if an hour had passed)
    db.prepare('UPDATE tokens SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), reader.id);
    db.close();
    expectError(await s.api('GET', '/vms', undefined, bearer(reader.token)), 401, 'UNAUTHORIZED');

    const temp = await mk({ name: 'temp', scope: 'admin' });
    expect((await s.api('GET', '/vms', undefined, bearer(temp.token))).status).toBe(200);
    expect((await s.api('DELETE', `/tokens/${temp.id}`, undefined, bearer(admin.token))).status).toBe(200);
    expectError(await s.api('GET', '/vms', undefined, bearer(temp.token)), 401, 'UNAUTHORIZED');
  });

  it('console tickets: one VM, one connection, never without one', async () => {
    const bearer = { authorization: `Bearer ${admin.token}` };
    for (const id of [vmA, vmB]) expect((await s.api('POST', `/vms/${id}/start`, undefined, bearer)).status).toBe(200);
    const ticket = async (id: string) => (await s.api('POST', `/vms/${id}/console`, undefined, bearer)).body.ticket as string;

    expect((await upgrade(s.url, vmA)).status).toBe(401);
    expect((await upgrade(s.url, vmA, { ticket: 'made-up' })).status).toBe(401);
    const forB = await ticket(vmB);
    expect((await upgrade(s.url, vmA, { ticket: forB })).status).toBe(401);
    expect((await upgrade(s.url, vmB, { ticket: forB })).status).toBe(401); // consumed by the failed try
    const t = await ticket(vmA);
    const first = await upgrade(s.url, vmA, { ticket: t });
    expect(first.status).toBe(101);
    expect(first.banner).toMatch(/^RFB/);
    expect((await upgrade(s.url, vmA, { ticket: t })).status).toBe(401);
    const withCookieOnly = await s.api('POST', `/vms/${vmA}/console`, undefined, { cookie });
    expect(withCookieOnly.status).toBe(200);
    expect(Date.parse(withCookieOnly.body.expiresAt) - Date.now()).toBeLessThanOrEqual(30_000);
  });

  it('keeps an audit log of who changed what', async () => {
    const { body } = await s.api('GET', '/audit?limit=200', undefined, { authorization: `Bearer ${admin.token}` });
    const e = body.entries as any[];
    expect(e.find((x) => x.action === 'POST /api/vms' && x.actor === 'session:admin' && x.status === 201 && x.target === vmA)).toBeTruthy();
    expect(e.find((x) => x.action === 'POST /api/auth/login' && x.actor === 'session:admin' && x.status === 200)).toBeTruthy();
    expect(e.find((x) => x.action === 'POST /api/tokens' && x.target === admin.id)).toBeTruthy();
    expect(e.find((x) => x.action === 'POST /api/vms/:vm_id/start' && x.actor === 'token:ci admin' && x.target === vmA)).toBeTruthy();
    expect(e.find((x) => x.action === 'POST /api/vms' && x.actor === 'token:grafana' && x.status === 403)).toBeTruthy();
    expect(e.find((x) => x.action === 'POST /api/auth/login' && x.status === 401)).toBeTruthy();
    expect(e.find((x) => x.action === 'CONSOLE /api/vnc/:vm_id' && x.target === vmA)).toBeTruthy();
  });

  it('never writes secrets to the log', async () => {
    await new Promise((r) => setTimeout(r, 200));
    expect(s.log.length).toBeGreaterThan(0);
    expect(s.log).not.toContain(PASSWORD);
    expect(s.log).not.toContain(admin.token);
    expect(s.log).not.toContain(cookie.split('=')[1]);
    expect(s.log).not.toContain('ticket=');
  });

  it('rate-limits login attempts', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await s.api('POST', '/auth/login', { password: `guess-${i}` })).status);
    // the earlier failure was forgiven by the successful login after it
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const right = await raw(s.url, 'POST', '/auth/login', { 'content-type': 'application/json' }, JSON.stringify({ password: PASSWORD }));
    expectError(right, 429, 'RATE_LIMITED');
    expect(Number(right.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('configuration', () => {
  const run = (env: Record<string, string>) => {
    const dir = makeDataDir();
    try {
      return spawnSync(process.execPath, [path.join(repoRoot, 'packages/server/dist/main.js')], {
        env: { ...process.env, DATA_DIR: dir, PORT: '0', WEB_DIR: '', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it('refuses to listen beyond loopback, or with AUTH=required, without a password', () => {
    const exposed = run({ HOST: '0.0.0.0' });
    expect(exposed.status).toBe(2);
    expect(exposed.stderr).toMatch(/Refusing to start: Authentication is required .*no admin password/);
    const required = run({ HOST: '127.0.0.1', AUTH: 'required' });
    expect(required.status).toBe(2);
    const off = run({ HOST: '0.0.0.0', AUTH: 'off' });
    expect(off.status).toBe(2);
    expect(off.stderr).toMatch(/AUTH=off is only allowed on a loopback HOST/);
  });

  it('serves HTTPS and WSS with TLS_CERT/TLS_KEY, with Secure cookies', async () => {
    const dir = makeDataDir();
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const s = await new TestServer(dir, { TLS_CERT: cert, TLS_KEY: key, ADMIN_PASSWORD: PASSWORD, AUTH: 'required' }).start({ https: true });
    try {
      expect(s.url).toMatch(/^https:/);
      const login = await raw(s.url, 'POST', '/auth/login', { 'content-type': 'application/json' }, JSON.stringify({ password: PASSWORD }));
      expect(login.status).toBe(200);
      expect(String(login.headers['set-cookie'])).toContain('Secure');
      const plain = await raw(s.url.replace('https', 'http'), 'GET', '/auth/status').catch((e: Error) => e);
      expect(plain instanceof Error || (plain).status === 400).toBe(true);
      const cookie = String(login.headers['set-cookie']).split(';')[0];
      const json = { cookie, 'content-type': 'application/json' };
      const vm = (await raw(s.url, 'POST', '/vms', json, JSON.stringify({ name: 'tls', cpus: 1, memory: 96 }))).body.vm;
      expect((await raw(s.url, 'POST', `/vms/${vm.id}/start`, { cookie })).status).toBe(200);
      const { ticket } = (await raw(s.url, 'POST', `/vms/${vm.id}/console`, { cookie })).body;
      const wss = await upgrade(s.url, vm.id, { ticket });
      expect(wss.status).toBe(101);
      expect(wss.banner).toMatch(/^RFB/);
      expect((await raw(s.url, 'POST', `/vms/${vm.id}/stop`, { cookie })).status).toBe(200);
    } finally {
      await s.dispose();
    }
  });
});
