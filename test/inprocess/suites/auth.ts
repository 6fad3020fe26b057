/** Authentication on: the guard, login, tokens, the audit log, and what a request without credentials sees. */
import { AuditList, AuthStatus, ConsoleTicket, CreatedToken, Health, MessageBody, TokenListEnvelope, type VmEnvelope } from '@qemu-manager/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export const PASSWORD = 'correct horse battery';

export function authSuite(): void {
  describe('authentication required', () => {
    let s: InProcessServer;
    let cookie: string;
    beforeAll(async () => {
      s = await startInProcess({ env: { AUTH: 'required', ADMIN_PASSWORD: PASSWORD } });
    });
    afterAll(async () => {
      await s.close();
    });
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

    it('without credentials: auth status and a bare health answer; everything else 401, unknown routes too', async () => {
      const st = await s.api('GET', '/auth/status');
      expect(st.status).toBe(200);
      expectShape(AuthStatus, st.body);
      expect(st.body).toEqual({ authRequired: true, authenticated: false, actor: null, scope: null });
      const h = await s.api('GET', '/health');
      expect(h.status).toBe(200);
      expectShape(Health, h.body);
      expect(Object.keys(h.body as object).sort()).toEqual(['status', 'timestamp']);
      expectError(await s.api('GET', '/vms'), 'UNAUTHORIZED', 401, 'Log in or send an API token');
      expectError(await s.api('POST', '/vms', { name: 'x', cpus: 1, memory: 64 }), 'UNAUTHORIZED', 401, 'Log in or send an API token');
      expectError(await s.api('GET', '/nope'), 'UNAUTHORIZED', 401, 'Log in or send an API token');
      expectError(await s.api('GET', '/vms', undefined, bearer('qmt_garbage')), 'UNAUTHORIZED', 401, 'Invalid, expired or revoked token');
      expectError(await s.api('POST', '/auth/login', { password: 'wrong password' }), 'UNAUTHORIZED', 401, 'Wrong password');
      expectError(await s.api('POST', '/auth/login', { password: '' }), 'VALIDATION', 400, 'body.password must NOT have fewer than 1 characters');
    });

    it('POST /auth/login opens a session (HttpOnly cookie) that every route accepts', async () => {
      const r = await s.api('POST', '/auth/login', { password: PASSWORD });
      expect(r.status).toBe(200);
      expectShape(MessageBody, r.body);
      expect(r.body).toEqual({ message: 'Logged in' });
      const set = String(r.headers['set-cookie']);
      expect(set).toMatch(/HttpOnly/);
      expect(set).toMatch(/SameSite=Strict/);
      cookie = set.split(';')[0]!;
      const st = await s.api('GET', '/auth/status', undefined, { cookie });
      expect(st.body).toEqual({ authRequired: true, authenticated: true, actor: 'session:admin', scope: 'admin' });
      const h = await s.api('GET', '/health', undefined, { cookie });
      expectShape(Health, h.body);
      expect(h.body).toHaveProperty('qemu');
      expect((await s.api('GET', '/vms', undefined, { cookie })).status).toBe(200);
    });

    it('tokens: created (once shown), listed, scoped, revoked; the audit log names who did what', async () => {
      const created = await s.api('POST', '/tokens', { name: 'ci', scope: 'read' }, { cookie });
      expect(created.status).toBe(201);
      expectShape(CreatedToken, created.body);
      const token = created.body as CreatedToken;
      expectError(await s.api('POST', '/tokens', { name: 'ci', scope: 'write' }, { cookie }), 'VALIDATION', 400, /^body\.scope /);
      const list = await s.api('GET', '/tokens', undefined, { cookie });
      expect(list.status).toBe(200);
      expectShape(TokenListEnvelope, list.body);
      expect((list.body as TokenListEnvelope).tokens).toMatchObject([{ id: token.id, name: 'ci', scope: 'read', revokedAt: null }]);
      expect(JSON.stringify(list.body)).not.toContain(token.token);

      expect((await s.api('GET', '/vms', undefined, bearer(token.token))).status).toBe(200);
      expectError(await s.api('POST', '/vms', { name: 'x', cpus: 1, memory: 64 }, bearer(token.token)), 'FORBIDDEN', 403, 'This token has read scope; this needs admin');
      expectError(await s.api('GET', '/tokens', undefined, bearer(token.token)), 'FORBIDDEN', 403, 'This token has read scope; this needs admin');

      const admin = (await s.api('POST', '/tokens', { name: 'deploy', scope: 'admin' }, { cookie })).body as CreatedToken;
      const vm = await s.api('POST', '/vms', { name: 'by-token', cpus: 1, memory: 64 }, bearer(admin.token));
      expect(vm.status).toBe(201);
      const id = (vm.body as VmEnvelope).vm.id;
      await s.api('POST', `/vms/${id}/start`, undefined, bearer(admin.token));
      const ticket = await s.api('POST', `/vms/${id}/console`, undefined, bearer(admin.token));
      expect(ticket.status).toBe(200);
      expectShape(ConsoleTicket, ticket.body);
      await s.api('POST', `/vms/${id}/stop`, undefined, bearer(admin.token));

      const revoked = await s.api('DELETE', `/tokens/${token.id}`, undefined, { cookie });
      expect(revoked.status).toBe(200);
      expect(revoked.body).toEqual({ message: 'Token revoked' });
      expectError(await s.api('GET', '/vms', undefined, bearer(token.token)), 'UNAUTHORIZED', 401, 'Invalid, expired or revoked token');
      expectError(await s.api('DELETE', '/tokens/nope', undefined, { cookie }), 'NOT_FOUND', 404, 'Token not found: nope');

      const audit = await s.api('GET', '/audit?limit=50', undefined, { cookie });
      expect(audit.status).toBe(200);
      expectShape(AuditList, audit.body);
      const entries = (audit.body as AuditList).entries;
      expect(entries.find((e) => e.action === 'POST /api/vms')).toMatchObject({ actor: 'token:deploy', target: id, status: 201 });
      expect(entries.filter((e) => e.action === 'DELETE /api/tokens/:id').map((e) => [e.actor, e.target, e.status])).toEqual([
        ['session:admin', 'nope', 404],
        ['session:admin', token.id, 200],
      ]);
      expectError(await s.api('GET', '/audit?limit=ten', undefined, { cookie }), 'VALIDATION', 400, /^querystring\.limit /);
    });

    it('a foreign Host (DNS rebinding) or a cross-site Origin is refused with 403, even with a session', async () => {
      expectError(
        await s.api('GET', '/vms', undefined, { cookie, host: 'evil.example' }),
        'HOST_NOT_ALLOWED',
        403,
        'Host "evil.example" is not this server (set ALLOWED_HOSTS to add a name)',
      );
      expectError(
        await s.api('POST', '/vms', { name: 'csrf', cpus: 1, memory: 64 }, { cookie, origin: 'https://evil.example' }),
        'ORIGIN_NOT_ALLOWED',
        403,
        'Cross-origin request refused (Origin https://evil.example)',
      );
      expectError(await s.api('POST', '/vms', { name: 'csrf', cpus: 1, memory: 64 }, { cookie, 'sec-fetch-site': 'cross-site' }), 'ORIGIN_NOT_ALLOWED', 403, 'Cross-origin request refused (Origin missing)');
      expect(((await s.api('GET', '/vms', undefined, { cookie })).body as { vms: Array<{ name: string }> }).vms.map((v) => v.name)).not.toContain('csrf');
    });

    it('failed logins are rate limited per client address (429 RATE_LIMITED with Retry-After); others are not', async () => {
      const from = (remoteAddress: string, password: string) =>
        s.inject({ method: 'POST', url: '/api/auth/login', remoteAddress, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ password }) });
      for (let i = 0; i < 5; i++) expectError(await from('192.0.2.9', 'guess'), 'UNAUTHORIZED', 401, 'Wrong password');
      const limited = await from('192.0.2.9', PASSWORD);
      expectError(limited, 'RATE_LIMITED', 429, 'Too many failed logins; try again later');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect((await from('192.0.2.10', PASSWORD)).status).toBe(200);
    });

    it('POST /auth/logout ends the session', async () => {
      const r = await s.api('POST', '/auth/logout', undefined, { cookie });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ message: 'Logged out' });
      expectError(await s.api('GET', '/vms', undefined, { cookie }), 'UNAUTHORIZED', 401, 'Log in or send an API token');
    });
  });
}
