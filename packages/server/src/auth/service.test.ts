import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDb, type Db } from '../store/sqlite.js';
import { AuthService, TICKET_TTL_MS } from './service.js';
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
