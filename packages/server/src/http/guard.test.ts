import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { isApiRoute, parseCookies, type PrincipalSource } from '../lib/request.js';
import { Guard, checkRouteScope, checkTarget, hostName, registerGuard } from './guard.js';

describe('hostName', () => {
  it('strips the port, brackets and case', () => {
    expect(hostName('LocalHost:5000')).toBe('localhost');
    expect(hostName('127.0.0.1')).toBe('127.0.0.1');
    expect(hostName('[::1]:5000')).toBe('::1');
    expect(hostName('evil.example:80')).toBe('evil.example');
    expect(hostName(undefined)).toBeNull();
  });
});

describe('parseCookies', () => {
  it('reads name=value pairs', () => {
    expect(parseCookies('a=1; qm_session=abc%3D; b')).toEqual({ a: '1', qm_session: 'abc=' });
    expect(parseCookies(undefined)).toEqual({});
  });
});

describe('checkTarget', () => {
  it('accepts origin-form paths only', () => {
    expect(checkTarget('/api/vms?x=1')).toBeNull();
    for (const t of ['http://127.0.0.1/api/tokens', 'HTTP://x/api/audit', '*', 'api/tokens', '', undefined]) {
      expect(checkTarget(t)).toMatchObject({ code: 'BAD_REQUEST' });
    }
  });
});

describe('route scopes', () => {
  it('every /api route declares one; read scope is for GET only; the UI outside /api is public', () => {
    expect(checkRouteScope({ url: '/api/vms', method: 'GET', config: { scope: 'read' } })).toBe('read');
    expect(checkRouteScope({ url: '/api/auth/login', method: 'POST', config: { scope: 'public' } })).toBe('public');
    expect(checkRouteScope({ url: '/*', method: ['GET', 'HEAD'], config: {} })).toBe('public');
    expect(() => checkRouteScope({ url: '/api/new', method: 'GET', config: {} })).toThrow(/declares no scope/);
    expect(() => checkRouteScope({ url: '/api', method: 'GET' })).toThrow(/declares no scope/);
    expect(() => checkRouteScope({ url: '/api/x', method: 'GET', config: { scope: 'everyone' } })).toThrow(/declares no scope/);
    expect(() => checkRouteScope({ url: '/api/x', method: 'POST', config: { scope: 'read' } })).toThrow(/read scope/);
    expect(isApiRoute('/apix')).toBe(false);
  });

  const auth = { required: true, tokenPrincipal: () => null, sessionPrincipal: () => null } as unknown as PrincipalSource;
  const reader = {
    required: true,
    tokenPrincipal: (b: string) => (b === 'r' ? { actor: 'token:r', scope: 'read', kind: 'token' } : null),
    sessionPrincipal: () => null,
  } as unknown as PrincipalSource;

  async function appWith(a: PrincipalSource, routes: (app: FastifyInstance) => void) {
    const app = Fastify();
    registerGuard(app, new Guard({ allowedHosts: [], allowedOrigins: [], auth: a }));
    await app.register(async (api) => routes(api), { prefix: '/api' });
    return app;
  }

  it('a server with an /api route that declares no scope does not start', async () => {
    const app = await appWith(auth, (api) => {
      api.get('/ok', { config: { scope: 'read' } }, async () => 'ok');
      api.get('/forgotten', async () => 'secret');
    }).catch((e: Error) => e);
    const err = app instanceof Error ? app : await app.ready().then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/GET \/api\/forgotten declares no scope/);
  });

  it('authorises on the matched route, however the path is spelled', async () => {
    const app = await appWith(reader, (api) => {
      api.get('/tokens', { config: { scope: 'admin' } }, async () => 'token list');
      api.get('/vms', { config: { scope: 'read' } }, async () => 'vm list');
      api.get('/status', { config: { scope: 'public' } }, async () => 'status');
    });
    const get = async (url: string, bearer?: string) => {
      const r = await app.inject({ method: 'GET', url, headers: { host: 'localhost', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) } });
      return `${r.statusCode} ${r.body.startsWith('{') ? JSON.parse(r.body).code : r.body}`;
    };
    for (const p of ['/api/tokens', '/%61pi/tokens', '/api/%74okens', '/%61%70%69/%74okens?x']) {
      expect(await get(p)).toBe('401 UNAUTHORIZED');
      expect(await get(p, 'r')).toBe('403 FORBIDDEN');
    }
    expect(await get('/%61pi/vms', 'r')).toBe('200 vm list');
    expect(await get('/%61pi/status')).toBe('200 status');
    // No route matched: a credential is still needed before the 404.
    for (const p of ['/api/nothing', '/api/tokens/', '/elsewhere']) {
      expect(await get(p)).toBe('401 UNAUTHORIZED');
      expect(await get(p, 'r')).toMatch(/^404 /);
    }
    await app.close();
  });
});
