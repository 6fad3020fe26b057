import type { ApiToken, CreateTokenBody, CreatedToken } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import { AppError } from '../lib/errors.js';
import type { Principal, PrincipalSource } from '../lib/request.js';
import { hashPassword, randomSecret, secretHash, verifyPassword } from './passwords.js';
import type { AuthStore } from './store.js';
import { unmapIPv4 } from '../lib/net.js';

const SESSION_TTL_MS = 12 * 3600_000;
export const TICKET_TTL_MS = 30_000;
const LOGIN_WINDOW_MS = 60_000;
const LOGIN_MAX_FAILURES = 5;
/** Password checks (scrypt) running at once per client address, and in all. */
const LOGIN_MAX_IN_FLIGHT = 2;
const LOGIN_MAX_IN_FLIGHT_TOTAL = 16;
/** Client addresses with a live failure count that are remembered at most. */
const LOGIN_TABLE_MAX = 10_000;
const TOKEN_TOUCH_MS = 60_000;
const PASSWORD_KEY = 'admin_password';

interface Attempts {
  count: number;
  inFlight: number;
  reset: number;
}

function rateLimited(message: string, retryMs: number): AppError & { retryAfter: number } {
  return Object.assign(new AppError('RATE_LIMITED', message), { retryAfter: Math.max(1, Math.ceil(retryMs / 1000)) });
}

/**
 * The rate limit's key for a client address: IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by its
 * /64 prefix, since one host commonly holds a whole /64.
 */
export function clientKey(ip: string): string {
  const v4 = unmapIPv4(ip);
  if (!v4.includes(':')) return v4;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Admin password, sessions, API tokens, console tickets and login rate limiting. */
export class AuthService implements PrincipalSource {
  private readonly tickets = new Map<string, { vmId: string; expires: number; kind: string }>();
  /** Per client address: attempts counted in the current window (failed or being checked). */
  private readonly attempts = new Map<string, Attempts>();
  private inFlight = 0;
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly store: AuthStore,
    readonly required: boolean,
  ) {}

  get passwordSet(): boolean {
    return this.store.setting(PASSWORD_KEY) !== null;
  }

  /** Sets the admin password; every existing session ends. */
  async setPassword(password: string): Promise<void> {
    if (password.length < 8) throw new AppError('VALIDATION', 'The admin password needs at least 8 characters');
    this.store.setSetting(PASSWORD_KEY, await hashPassword(password));
    this.store.deleteAllSessions();
  }

  /**
   * Checks the password and opens a session; returns the cookie value. Rate-limited per client
   * address (an IPv6 client by its /64): an attempt is counted BEFORE the password is checked, so
   * concurrent guesses cannot all slip in, and it is given back only if the password was right.
   * At most LOGIN_MAX_IN_FLIGHT checks run per address, LOGIN_MAX_IN_FLIGHT_TOTAL in all.
   */
  async login(password: string, ip: string): Promise<{ session: string; expiresAt: Date }> {
    const now = Date.now();
    const key = clientKey(ip);
    const a = this.reserveAttempt(key, now);
    let ok = false;
    try {
      const stored = this.store.setting(PASSWORD_KEY);
      ok = stored !== null && (await verifyPassword(password, stored));
      if (!ok) throw new AppError('UNAUTHORIZED', stored ? 'Wrong password' : 'No admin password is set');
    } finally {
      a.inFlight--;
      this.inFlight--;
      // A right password forgives the failures before it (not the guesses still being checked).
      if (ok) a.count = a.inFlight;
      if (a.count === 0 && a.inFlight === 0) this.attempts.delete(key);
    }
    const session = randomSecret();
    const at = Date.now();
    const expiresAt = new Date(at + SESSION_TTL_MS);
    this.store.purgeSessions(new Date(at).toISOString());
    this.store.addSession(secretHash(session), new Date(at).toISOString(), expiresAt.toISOString());
    return { session, expiresAt };
  }

  /** Counts one login attempt for `key`, or throws 429 (with `retryAfter` seconds). */
  private reserveAttempt(key: string, now: number): Attempts {
    let a = this.attempts.get(key);
    if (a && a.reset <= now && a.inFlight === 0) {
      this.attempts.delete(key);
      a = undefined;
    }
    if (a && a.count >= LOGIN_MAX_FAILURES) throw rateLimited('Too many failed logins; try again later', a.reset - now);
    if (a && a.inFlight >= LOGIN_MAX_IN_FLIGHT) throw rateLimited('A login from this address is already being checked', 1000);
    if (this.inFlight >= LOGIN_MAX_IN_FLIGHT_TOTAL) throw rateLimited('Too many logins are being checked; try again shortly', 1000);
    if (!a) {
      if (this.attempts.size >= LOGIN_TABLE_MAX) {
        for (const [k, v] of this.attempts) if (v.reset <= now && v.inFlight === 0) this.attempts.delete(k);
      }
      // Full of live entries: refuse new addresses rather than forget the counts of others.
      if (this.attempts.size >= LOGIN_TABLE_MAX) throw rateLimited('Too many clients are failing to log in; try again later', LOGIN_WINDOW_MS);
      a = { count: 0, inFlight: 0, reset: now + LOGIN_WINDOW_MS };
      this.attempts.set(key, a);
    }
    a.count++;
    a.inFlight++;
    this.inFlight++;
    return a;
  }

  logout(session: string | undefined): void {
    if (session) this.store.deleteSession(secretHash(session));
  }

  sessionPrincipal(session: string | undefined): Principal | null {
    if (!session) return null;
    const expires = this.store.sessionExpiry(secretHash(session));
    if (!expires || Date.parse(expires) <= Date.now()) return null;
    return { actor: 'session:admin', scope: 'admin', kind: 'session' };
  }

  /** Tokens look like `qmt_<id>_<secret>`; the id finds the row, the secret's hash must match. */
  tokenPrincipal(bearer: string | undefined): Principal | null {
    const m = bearer?.match(/^qmt_([0-9a-f-]{36})_([A-Za-z0-9_-]{43})$/);
    if (!m) return null;
    const t = this.store.token(m[1]!);
    if (!t || t.revokedAt) return null;
    if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return null;
    const a = Buffer.from(t.secretHash);
    const b = Buffer.from(secretHash(m[2]!));
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return null;
    const now = Date.now();
    if ((this.touched.get(t.id) ?? 0) + TOKEN_TOUCH_MS <= now) {
      this.touched.set(t.id, now);
      this.store.touchToken(t.id, new Date(now).toISOString());
    }
    return { actor: `token:${t.name}`, scope: t.scope, kind: 'token' };
  }

  createToken(body: CreateTokenBody): CreatedToken {
    const id = crypto.randomUUID();
    const secret = randomSecret();
    const now = new Date();
    const expiresAt = body.expiresIn ? new Date(now.getTime() + body.expiresIn * 1000).toISOString() : null;
    this.store.addToken({ id, name: body.name, scope: body.scope, secret_hash: secretHash(secret), created_at: now.toISOString(), expires_at: expiresAt });
    return { token: `qmt_${id}_${secret}`, id, name: body.name, scope: body.scope, createdAt: now.toISOString(), expiresAt };
  }

  listTokens(): ApiToken[] {
    return this.store.tokens().map(({ secretHash: _s, ...t }) => t);
  }

  revokeToken(id: string): void {
    if (!this.store.token(id)) throw new AppError('NOT_FOUND', `Token not found: ${id}`);
    this.store.revokeToken(id, new Date().toISOString());
  }

  /** A console ticket: one WebSocket connection to one VM, within ~30 s. */
  issueTicket(vmId: string, kind: 'vnc' | 'serial' = 'vnc'): { ticket: string; expiresAt: string } {
    const now = Date.now();
    for (const [k, v] of this.tickets) if (v.expires <= now) this.tickets.delete(k);
    const ticket = randomSecret();
    const expires = now + TICKET_TTL_MS;
    this.tickets.set(secretHash(ticket), { vmId, expires, kind }); // kind: serial console (issue 14)
    return { ticket, expiresAt: new Date(expires).toISOString() };
  }

  /** Consumes a ticket: true only once, only for its VM and console kind, only before it expires. */
  redeemTicket(ticket: string | null, vmId: string, kind: 'vnc' | 'serial' = 'vnc'): boolean {
    if (!ticket) return false;
    const key = secretHash(ticket);
    const t = this.tickets.get(key);
    if (!t) return false;
    this.tickets.delete(key);
    return t.vmId === vmId && t.kind === kind && t.expires > Date.now();
  }
}
