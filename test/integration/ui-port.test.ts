/**
 * The second listener (UI_PORT, issue 15): the same server process serves the web UI (and the
 * same app, behind the same guard) on a second port; a taken UI_PORT is a warning, never a reason
 * not to start. Also GET /api/docs (interactive API docs, scope read like /api/openapi.json).
 */
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, holdPort, login, request } from '../kit/index.mjs';
import { TestServer, makeDataDir, repoRoot } from './harness.js';

const WEB_DIR = path.join(repoRoot, 'packages/web/dist');
const PASSWORD = 'ui-port-test-password';

describe('UI_PORT: the web UI on a second port of the same server', () => {
  let server: TestServer;
  let uiPort: number;
  let ui: string;

  beforeAll(async () => {
    expect(fs.existsSync(path.join(WEB_DIR, 'index.html')), 'build the web UI first: npm run build -w packages/web').toBe(true);
    uiPort = await freePort();
    ui = `http://127.0.0.1:${uiPort}`;
    server = await new TestServer(makeDataDir(), { UI_PORT: String(uiPort), WEB_DIR, AUTH: 'required', ADMIN_PASSWORD: PASSWORD }).start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('serves the UI at http://localhost:<UI_PORT>/, the same as on PORT', async () => {
    const host = { host: `localhost:${uiPort}` };
    const page = await request(ui, 'GET', '/', undefined, { headers: host });
    expect(page.status).toBe(200);
    expect(String(page.headers['content-type'])).toMatch(/text\/html/);
    const html = page.raw.toString('utf8');
    expect(html).toContain('<div id="root">');
    const main = await request(server.url, 'GET', '/');
    expect(main.raw.toString('utf8')).toBe(html);
    // A client-side route gets index.html there too.
    const deep = await request(ui, 'GET', '/vms/abc/console', undefined, { headers: host });
    expect(deep.status).toBe(200);
    expect(deep.raw.toString('utf8')).toBe(html);
    expect(server.log).toMatch(new RegExp(`web UI also at http://127\\.0\\.0\\.1:${uiPort}`));
  });

  it('is the same app behind the same guard: credentials, Host and Origin checks', async () => {
    const host = { host: `localhost:${uiPort}` };
    const anon = await request(ui, 'GET', '/api/vms', undefined, { headers: host });
    expect(anon.status).toBe(401);
    expect(anon.body).toMatchObject({ code: 'UNAUTHORIZED' });
    const cookie = await login(ui, PASSWORD); // the session works on both ports
    const vms = await request(ui, 'GET', '/api/vms', undefined, { headers: host, cookie });
    expect(vms.status).toBe(200);
    expect(vms.body).toHaveProperty('vms');
    const otherPort = await request(server.url, 'GET', '/api/vms', undefined, { cookie });
    expect(otherPort.body).toEqual(vms.body);
    // DNS rebinding: a foreign Host name is refused on the UI port as on PORT.
    const rebound = await request(ui, 'GET', '/api/vms', undefined, { headers: { host: `evil.example:${uiPort}` }, cookie });
    expect(rebound.status).toBe(403);
    expect(rebound.body).toMatchObject({ code: 'HOST_NOT_ALLOWED' });
    // Same-origin on the UI port is accepted; a foreign Origin is refused.
    const same = await request(ui, 'POST', '/api/disks', { name: 'ui-port-disk', size: 1, format: 'qcow2' }, { headers: { ...host, origin: `http://localhost:${uiPort}` }, cookie });
    expect(same.status).toBe(201);
    const cross = await request(ui, 'POST', '/api/disks', { name: 'ui-port-disk2', size: 1, format: 'qcow2' }, { headers: { ...host, origin: 'http://evil.example' }, cookie });
    expect(cross.status).toBe(403);
    expect(cross.body).toMatchObject({ code: 'ORIGIN_NOT_ALLOWED' });
    const disks = await request(server.url, 'GET', '/api/disks', undefined, { cookie });
    expect((disks.body as { disks: { name: string }[] }).disks.map((d) => d.name)).toEqual(['ui-port-disk']);
  });

  it('GET /api/docs: Swagger UI of the served OpenAPI document, its files local, read scope', async () => {
    const anon = await request(ui, 'GET', '/api/docs', undefined, { headers: { host: `localhost:${uiPort}` } });
    expect(anon.status).toBe(401);
    const cookie = await login(server.url, PASSWORD);
    const page = await request(server.url, 'GET', '/api/docs', undefined, { cookie });
    expect(page.status).toBe(200);
    const html = page.raw.toString('utf8');
    expect(html).toMatch(/swagger-ui/i);
    // Every script and style sheet of the page is served by this server (no CDN).
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(2);
    for (const a of assets) {
      expect(a).not.toMatch(/^(https?:)?\/\//);
      const url = new URL(a, `${server.url}/api/docs/`);
      const r = await request(server.url, 'GET', url.pathname, undefined, { cookie });
      expect(r.status, url.pathname).toBe(200);
    }
    const bundle = await request(server.url, 'GET', '/api/docs/static/swagger-ui-bundle.js', undefined, { cookie });
    expect(bundle.raw.length).toBeGreaterThan(100_000);
    // The document it shows is the API's own.
    const doc = await request(server.url, 'GET', '/api/docs/json', undefined, { cookie });
    const openapi = await request(server.url, 'GET', '/api/openapi.json', undefined, { cookie });
    expect(doc.status).toBe(200);
    expect(doc.body).toEqual(openapi.body);
  });
});

describe('UI_PORT taken', () => {
  let blocker: net.Server;
  let server: TestServer;

  afterAll(async () => {
    await server?.dispose();
    await new Promise((r) => blocker?.close(r));
  });

  it('the server warns and starts anyway, serving on PORT', async () => {
    const port = await freePort();
    blocker = await holdPort(port);
    server = await new TestServer(makeDataDir(), { UI_PORT: String(port), WEB_DIR }).start();
    expect(server.proc?.exitCode).toBeNull();
    const health = await server.api('GET', '/health');
    expect(health.status).toBe(200);
    const page = await request(server.url, 'GET', '/');
    expect(page.status).toBe(200);
    expect(server.log).toContain(`UI_PORT ${port} is not available (EADDRINUSE); the web UI is served on PORT ${server.port} only`);
    expect(server.log).toMatch(/"level":40/); // a warning
  });
});
