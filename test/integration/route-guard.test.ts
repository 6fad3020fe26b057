/**
 * The guard authorises on the route the router matched, whatever the spelling of the path; request
 * targets other than origin-form paths are refused; the audit log records by route, with control
 * characters escaped; and what the server writes to its data dir is owner-only.
 * Requests go over raw sockets, so the target is exactly what an attacker would send.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, repoRoot, waitFor } from './harness.js';

const PASSWORD = 'route guard password';
const VM_ID = '00000000-0000-4000-8000-000000000000';

interface Raw {
  status: number;
  head: string;
  body: any;
}

/** Sends `head` (request line and headers, without the blank line) and `body` as they are. */
function rawHttp(port: number, head: string, body = ''): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const i = text.indexOf('\r\n\r\n');
      const rest = i < 0 ? '' : text.slice(i + 4);
      let parsed: unknown = rest;
      try {
        parsed = JSON.parse(rest);
      } catch {
        /* keep text */
      }
      resolve({ status: Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0), head: i < 0 ? text : text.slice(0, i), body: parsed });
    });
    const len = body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '';
    // Written, not ended: the server closes the connection after its answer (Connection: close).
    sock.write(`${head}\r\nConnection: close\r\n${len}\r\n${body}`);
  });
}

function expectError(r: Raw, status: number, code: string) {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(typeof r.body.error).toBe('string');
  expect(Date.parse(r.body.timestamp)).not.toBeNaN();
}

describe('AUTH=required: the guard and the audit log go by the matched route', () => {
  let s: TestServer;
  let host: string;
  let admin: string;
  let reader: string;
  const req = (method: string, target: string, headers: Record<string, string> = {}, body = '') =>
    rawHttp(s.port, [`${method} ${target} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n'), body);
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });
  const tokenCount = () => {
    const db = new Database(path.join(s.dataDir, 'db.sqlite'), { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM tokens').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const audit = async () => (await req('GET', '/api/audit?limit=1000', as(admin))).body.entries as any[];

  beforeAll(async () => {
    s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD }).start();
    host = `127.0.0.1:${s.port}`;
    const login = await req('POST', '/api/auth/login', {}, JSON.stringify({ password: PASSWORD }));
    const cookie = /qm_session=[^;]+/.exec(login.head)![0];
    const mk = async (name: string, scope: string) =>
      (await req('POST', '/api/tokens', { Cookie: cookie }, JSON.stringify({ name, scope }))).body.token as string;
    admin = await mk('admin', 'admin');
    reader = await mk('reader', 'read');
  });
  afterAll(() => s?.dispose());

  it('without credentials, no spelling of an admin route answers, and no token is minted', async () => {
    const before = tokenCount();
    for (const target of ['/%61pi/tokens', '/api/%74okens', '/%61%70%69/%74%6f%6b%65%6e%73', '/%61pi/audit', '/api/%61udit?limit=5', '/api/vms']) {
      expectError(await req('GET', target), 401, 'UNAUTHORIZED');
    }
    expectError(await req('POST', '/%61pi/tokens', {}, JSON.stringify({ name: 'minted', scope: 'admin' })), 401, 'UNAUTHORIZED');
    expectError(await req('POST', '/api/%74okens', {}, JSON.stringify({ name: 'minted', scope: 'admin' })), 401, 'UNAUTHORIZED');
    expect(tokenCount()).toBe(before);
    // The public routes stay public, however they are spelled.
    expect((await req('GET', '/%61pi/auth/status')).body).toEqual({ authRequired: true, authenticated: false, actor: null, scope: null });
  });

  it('a read token reads, but lists neither tokens nor the audit log, under any spelling', async () => {
    for (const target of ['/api/%74okens', '/api/%61udit', '/%61pi/tokens', '/%61pi/%61udit?limit=1']) {
      expectError(await req('GET', target, as(reader)), 403, 'FORBIDDEN');
    }
    expectError(await req('POST', '/api/%74okens', as(reader), JSON.stringify({ name: 'up', scope: 'admin' })), 403, 'FORBIDDEN');
    const vms = await req('GET', '/api/%76ms', as(reader));
    expect(vms.status).toBe(200);
    expect(vms.body).toEqual({ vms: [] });
    expect((await req('GET', '/%61pi/tokens', as(admin))).body.tokens.map((t: any) => t.name).sort()).toEqual(['admin', 'reader']);
  });

  it('refuses request targets that are not origin-form paths, with or without credentials', async () => {
    const before = tokenCount();
    for (const [method, target] of [
      ['GET', `http://${host}/api/tokens`],
      ['GET', 'http://127.0.0.1/api/audit'],
      ['GET', 'HTTP://localhost/api/vms'],
      ['GET', '*'],
      ['OPTIONS', '*'],
    ] as const) {
      expectError(await req(method, target), 400, 'BAD_REQUEST');
      expectError(await req(method, target, as(reader)), 400, 'BAD_REQUEST');
    }
    expectError(await req('POST', 'http://127.0.0.1/api/tokens', {}, JSON.stringify({ name: 'minted', scope: 'admin' })), 400, 'BAD_REQUEST');
    expectError(await req('POST', 'http://127.0.0.1/api/tokens', as(admin), JSON.stringify({ name: 'minted', scope: 'admin' })), 400, 'BAD_REQUEST');
    expect(tokenCount()).toBe(before);
    // Targets the HTTP parser itself rejects never reach a route either, and get the same shape.
    for (const target of ['api/tokens', '%2Fapi/tokens', '\\api\\tokens']) expectError(await req('GET', target, as(admin)), 400, 'BAD_REQUEST');
  });

  it('refuses a WebSocket upgrade with an absolute-form target', async () => {
    const ws = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const head = (target: string) => [`GET ${target} HTTP/1.1`, `Host: ${host}`, ...Object.entries(ws).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
    const refused = async (target: string) => {
      const r = await new Promise<Raw>((resolve, reject) => {
        const sock = net.connect(s.port, '127.0.0.1');
        let text = '';
        sock.on('data', (d) => (text += d.toString()));
        sock.on('error', reject);
        sock.on('close', () => {
          const i = text.indexOf('\r\n\r\n');
          resolve({ status: Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0), head: text.slice(0, i), body: JSON.parse(text.slice(i + 4)) });
        });
        sock.write(`${head(target)}\r\n\r\n`);
      });
      return r;
    };
    expectError(await refused(`http://${host}/api/vnc/${VM_ID}`), 400, 'BAD_REQUEST');
    expectError(await refused(`http://${host}/api/vnc/${VM_ID}?ticket=x`), 400, 'BAD_REQUEST');
    // An origin-form upgrade still gets as far as the ticket check.
    expectError(await refused(`/api/vnc/${VM_ID}`), 401, 'UNAUTHORIZED');
  });

  it('unmatched /api paths need credentials first, then answer 404 without running anything', async () => {
    expectError(await req('GET', '/api/nothing-here'), 401, 'UNAUTHORIZED');
    expectError(await req('DELETE', '/api/tokens'), 401, 'UNAUTHORIZED');
    expectError(await req('GET', '/api/nothing-here', as(reader)), 404, 'NOT_FOUND');
    expectError(await req('DELETE', '/api/tokens', as(admin)), 404, 'NOT_FOUND');
  });

  it('audits state-changing requests by their route, refused ones included; unmatched ones not at all', async () => {
    const start = Math.max(0, ...(await audit()).map((e) => e.id));
    expectError(await req('POST', '/%61pi/tokens', {}, JSON.stringify({ name: 'x', scope: 'admin' })), 401, 'UNAUTHORIZED');
    expectError(await req('POST', '/api/%74okens', as(reader), JSON.stringify({ name: 'x', scope: 'admin' })), 403, 'FORBIDDEN');
    expectError(await req('DELETE', `/%61pi/vms/${VM_ID}`, as(reader)), 403, 'FORBIDDEN');
    expect((await req('POST', '/%61pi/%76ms', as(admin), JSON.stringify({ name: 'spelled', cpus: 1, memory: 96 }))).status).toBe(201);
    expectError(await req('POST', '/api/nothing-here', as(admin)), 404, 'NOT_FOUND');
    const got = (await audit()).filter((e) => e.id > start).map((e) => [e.action, e.actor, e.status]).reverse();
    expect(got).toEqual([
      ['POST /api/tokens', 'anonymous', 401],
      ['POST /api/tokens', 'token:reader', 403],
      ['DELETE /api/vms/:vm_id', 'token:reader', 403],
      ['POST /api/vms', 'token:admin', 201],
    ]);
  });

  it('control characters never reach the audit log raw', async () => {
    const start = Math.max(0, ...(await audit()).map((e) => e.id));
    // A path parameter carries them: newline, CR, ESC, DEL, C1 NEL, line separator, bidi override.
    const name = 'a\nFAKE b\r\u001b[2J\u007f\u0085\u2028\u202egsm.iso';
    const r = await req('DELETE', `/api/isos/${encodeURIComponent(name)}`, as(admin));
    expect(r.status).toBeGreaterThanOrEqual(400);
    const entry = (await audit()).find((e) => e.id > start && e.action === 'DELETE /api/isos/:name');
    expect(entry?.target).toBe('a\\u000aFAKE b\\u000d\\u001b[2J\\u007f\\u0085\\u2028\\u202egsm.iso');
    const db = new Database(path.join(s.dataDir, 'db.sqlite'), { readonly: true });
    const values = (db.prepare('SELECT actor, ip, action, target FROM audit').all() as Record<string, unknown>[]).flatMap((r) => Object.values(r));
    db.close();
    expect(values.length).toBeGreaterThan(0);
    const raw = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    expect(values.filter((v) => typeof v === 'string' && raw.test(v))).toEqual([]);
  });
});

describe('AUTH=required with the web UI served', () => {
  let s: TestServer;
  let web: string;
  beforeAll(async () => {
    web = makeDataDir();
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>shell</title>');
    fs.mkdirSync(path.join(web, 'assets'));
    fs.writeFileSync(path.join(web, 'assets', 'app.js'), 'console.log(1)');
    s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD, WEB_DIR: web }).start();
  });
  afterAll(async () => {
    await s?.dispose();
    fs.rmSync(web, { recursive: true, force: true });
  });

  it('the UI and its deep links load without a login; the API, known or unknown, does not', async () => {
    const get = async (p: string, method = 'GET') => {
      const r = await fetch(`${s.url}${p}`, { method });
      return `${r.status} ${(await r.text()).slice(0, 40)}`;
    };
    expect(await get('/')).toBe('200 <!doctype html><title>shell</title>');
    expect(await get('/vms/some-id/console')).toBe('200 <!doctype html><title>shell</title>');
    expect(await get('/assets/app.js')).toBe('200 console.log(1)');
    for (const p of ['/api/vms', '/api/nothing-here', '/%61pi/tokens']) expect(await get(p)).toMatch(/^401 /);
    expect(await get('/api/nothing-here', 'POST')).toMatch(/^401 /);
  });
});

describe('what the server writes is its own', () => {
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? [p, ...walk(p)] : [p];
    });
  const mode = (f: string) => (fs.statSync(f).mode & 0o777).toString(8).padStart(3, '0');
  // Runs as `nobody`: what any local user could do.
  const asNobody = (...cmd: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { encoding: 'utf8' });

  it('data dir 0711; database, -wal, -shm, disks, ISOs owner-only; a local user reads none of it', async () => {
    const s = await new TestServer(makeDataDir(), { AUTH: 'required', ADMIN_PASSWORD: PASSWORD }).start();
    try {
      const login = await fetch(`${s.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: PASSWORD }) });
      expect(login.status).toBe(200);
      const cookie = login.headers.get('set-cookie')!.split(';')[0];
      const iso = Buffer.alloc(40_000);
      iso.write('\x01CD001', 16 * 2048, 'latin1');
      expect((await s.api('POST', '/disks', { name: 'private', size: 1, format: 'qcow2' }, { cookie })).status).toBe(201);
      expect((await s.api('PUT', '/isos/private.iso', iso, { cookie, 'content-type': 'application/octet-stream' })).status).toBe(201);

      const db = path.join(s.dataDir, 'db.sqlite');
      const read = asNobody('cat', db);
      expect(read.status).not.toBe(0);
      expect(read.stderr).toMatch(/Permission denied/);
      expect(asNobody('ls', s.dataDir).status).not.toBe(0);
      expect(mode(s.dataDir)).toBe('711');
      for (const f of [db, `${db}-wal`, `${db}-shm`]) expect([f, mode(f)]).toEqual([f, '600']);
      // Nothing under the data dir is readable or writable by group or others.
      const open = walk(s.dataDir).filter((f) => (fs.statSync(f).mode & 0o066) !== 0).map((f) => `${mode(f)} ${f}`);
      expect(open).toEqual([]);
    } finally {
      await s.dispose();
    }
  });

  it('a data dir an older version left open (0755 dirs, 0644 images) is closed at start', async () => {
    const s = await new TestServer(makeDataDir()).start();
    try {
      const disk = (await s.api('POST', '/disks', { name: 'old', size: 1, format: 'qcow2' })).body.disk;
      await waitFor(async () => (await s.api('GET', '/disks')).body.disks[0]?.status === 'ready', 20_000, 'the disk');
      await s.kill('SIGTERM');
      for (const d of ['disks', 'isos', 'run']) fs.chmodSync(path.join(s.dataDir, d), 0o755);
      fs.chmodSync(disk.path, 0o644);
      expect(asNobody('head', '-c', '3', disk.path).stdout).toBe('QFI'); // any local user reads it now
      await s.start();
      expect(mode(disk.path)).toBe('600');
      expect(mode(path.join(s.dataDir, 'disks'))).toBe('700');
      expect(asNobody('head', '-c', '3', disk.path).status).not.toBe(0);
      const open = walk(s.dataDir).filter((f) => (fs.statSync(f).mode & 0o066) !== 0).map((f) => `${mode(f)} ${f}`);
      expect(open).toEqual([]);
    } finally {
      await s.dispose();
    }
  });

  it('the admin CLI creates the database owner-only too', () => {
    const dir = makeDataDir();
    fs.chmodSync(dir, 0o755); // so only the file's own mode keeps others out
    try {
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages/server/dist/cli.js'), 'set-password'], {
        input: 'cli password\n',
        env: { ...process.env, DATA_DIR: dir },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const db = path.join(dir, 'db.sqlite');
      for (const f of [db, `${db}-wal`, `${db}-shm`].filter((x) => fs.existsSync(x))) expect([f, mode(f)]).toEqual([f, '600']);
      expect(asNobody('cat', db).status).not.toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
