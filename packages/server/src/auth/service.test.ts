import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { statusOf } from '../http/error-table.js';
import { isAppError } from '../lib/errors.js';
import { openDb, type Db } from '../store/sqlite.js';
import { AuthService, TICKET_TTL_MS, clientKey } from './service.js';
import { AuthStore } from './store.js';

let dir: string;
let db: Db;
let auth: AuthService;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-unit-'));
  db = openDb(path.join(dir, 'db.sqlite'));
  auth = new AuthService(new AuthStore(db), true);
});
afterEach(() => {
  vi.useRealTimers();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('console tickets', () => {
  it('open one connection to one VM, before they expire', () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const a = auth.issueTicket('vm-a');
    expect(Date.parse(a.expiresAt) - Date.now()).toBe(TICKET_TTL_MS);
    expect(auth.redeemTicket(a.ticket, 'vm-a')).toBe(true);
    expect(auth.redeemTicket(a.ticket, 'vm-a')).toBe(false);

    const b = auth.issueTicket('vm-b');
    expect(auth.redeemTicket(b.ticket, 'vm-a')).toBe(false);
    expect(auth.redeemTicket(b.ticket, 'vm-b')).toBe(false);

    const late = auth.issueTicket('vm-a');
    vi.setSystemTime(Date.now() + TICKET_TTL_MS + 1);
    expect(auth.redeemTicket(late.ticket, 'vm-a')).toBe(false);
    expect(auth.redeemTicket(null, 'vm-a')).toBe(false);
  });
});

describe('sessions and tokens', () => {
  it('a session expires, and a new password ends all sessions', async () => {
    await auth.setPassword('long enough');
    const { session } = await auth.login('long enough', '1.2.3.4');
    expect(auth.sessionPrincipal(session)?.scope).toBe('admin');
    await auth.setPassword('another one!');
    expect(auth.sessionPrincipal(session)).toBeNull();
    await expect(auth.setPassword('short')).rejects.toThrow(/at least 8/);
  });

  it('token expiry is checked on every use', () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const t = auth.createToken({ name: 'x', scope: 'read', expiresIn: 60 });
    expect(auth.tokenPrincipal(t.token)).toMatchObject({ actor: 'token:x', scope: 'read' });
    vi.setSystemTime(Date.now() + 61_000);
    expect(auth.tokenPrincipal(t.token)).toBeNull();
  });
});

describe('login rate limit', () => {
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (e: unknown) => (isAppError(e) ? statusOf(e.code) : 500),
    );

  it('counts an attempt before checking it: a burst has at most 5 checked, then even the right password waits for the window', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-01-01T00:00:00Z') });
    await auth.setPassword('long enough');
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => outcome(auth.login(`guess-${i}`, '192.0.2.1'))));
    const checked = burst.filter((s) => s === 401).length;
    // at most 2 checks run at once per address
    expect(checked).toBeGreaterThanOrEqual(1);
    expect(checked).toBeLessThanOrEqual(2);
    expect(burst.filter((s) => s === 429).length).toBe(40 - checked);
    const rest: number[] = [];
    for (let i = 0; i < 6; i++) rest.push(await outcome(auth.login(`more-${i}`, '192.0.2.1')));
    expect(checked + rest.filter((s) => s === 401).length).toBe(5);
    await expect(auth.login('long enough', '192.0.2.1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    // another address is not affected; an IPv4-mapped spelling of the same one is
    await expect(auth.login('long enough', '192.0.2.2')).resolves.toHaveProperty('session');
    await expect(auth.login('long enough', '::ffff:192.0.2.1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    vi.setSystemTime(Date.now() + 61_000);
    await expect(auth.login('long enough', '192.0.2.1')).resolves.toHaveProperty('session');
  });

  it('the right password forgives the failures before it', async () => {
    await auth.setPassword('long enough');
    for (let i = 0; i < 4; i++) await expect(auth.login('wrong', '192.0.2.3')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await auth.login('long enough', '192.0.2.3');
    for (let i = 0; i < 5; i++) await expect(auth.login('wrong', '192.0.2.3')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(auth.login('wrong', '192.0.2.3')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('an IPv6 client is limited by its /64', async () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:ffff:0:0:9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    await auth.setPassword('long enough');
    for (let i = 0; i < 5; i++) await expect(auth.login('wrong', `2001:db8:1:2::${i + 1}`)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(auth.login('long enough', '2001:db8:1:2:dead:beef:0:1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(auth.login('long enough', '2001:db8:1:3::1')).resolves.toHaveProperty('session');
  });
});
