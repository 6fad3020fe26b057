import type { ApiToken, CreateTokenBody, CreatedToken, TokenScope } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import { AppError } from '../lib/errors.js';
import { hashPassword, randomSecret, secretHash, verifyPassword } from './passwords.js';
import type { AuthStore } from './store.js';

export const SESSION_COOKIE = 'qm_session';
export const SESSION_TTL_MS = 12 * 3600_000;
export const TICKET_TTL_MS = 30_000;
const LOGIN_WINDOW_MS = 60_000;
const LOGIN_MAX_FAILURES = 5;
const TOKEN_TOUCH_MS = 60_000;
const PASSWORD_KEY = 'admin_password';

/** Who is making a request. `local` is the unauthenticated loopback default. */
export interface Principal {
  actor: string;
  scope: TokenScope;
  kind: 'session' | 'token' | 'local';
}

/** Admin password, sessions, API tokens, console tickets and login rate limiting. */
export class AuthService {
  private readonly tickets = new Map<string, { vmId: string; expires: number }>();
  private readonly failures = new Map<string, { count: number; reset: number }>();
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
    if (password.length < 8) throw new AppError(400, 'VALIDATION', 'The admin password needs at least 8 characters');
    this.store.setSetting(PASSWORD_KEY, await hashPassword(password));
    this.store.deleteAllSessions();
  }

  /** Checks the password (rate-limited per client address) and opens a session. Returns the cookie value. */
  async login(password: string, ip: string): Promise<{ session: string; expiresAt: Date }> {
    const now = Date.now();
    const f = this.failures.get(ip);
    if (f && f.reset > now && f.count >= LOGIN_MAX_FAILURES) {
      throw Object.assign(new AppError(429, 'RATE_LIMITED', 'Too many failed logins; try again in a minute'), {
        retryAfter: Math.ceil((f.reset - now) / 1000),
      });
    }
    const stored = this.store.setting(PASSWORD_KEY);
    if (!stored || !(await verifyPassword(password, stored))) {
      if (this.failures.size > 10_000) for (const [k, v] of this.failures) if (v.reset <= now) this.failures.delete(k);
      const cur = f && f.reset > now ? f : { count: 0, reset: now + LOGIN_WINDOW_MS };
      cur.count++;
      this.failures.set(ip, cur);
      throw new AppError(401, 'UNAUTHORIZED', stored ? 'Wrong password' : 'No admin password is set');
    }
    this.failures.delete(ip);
    const session = randomSecret();
    const expiresAt = new Date(now + SESSION_TTL_MS);
    this.store.purgeSessions(new Date(now).toISOString());
    this.store.addSession(secretHash(session), new Date(now).toISOString(), expiresAt.toISOString());
    return { session, expiresAt };
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
    if (!this.store.token(id)) throw new AppError(404, 'NOT_FOUND', `Token not found: ${id}`);
    this.store.revokeToken(id, new Date().toISOString());
  }

  /** A console ticket: one WebSocket connection to one VM, within ~30 s. */
  issueTicket(vmId: string): { ticket: string; expiresAt: string } {
    const now = Date.now();
    for (const [k, v] of this.tickets) if (v.expires <= now) this.tickets.delete(k);
    const ticket = randomSecret();
    const expires = now + TICKET_TTL_MS;
    this.tickets.set(secretHash(ticket), { vmId, expires });
    return { ticket, expiresAt: new Date(expires).toISOString() };
  }

  /** Consumes a ticket: true only once, only for its VM, only before it expires. */
  redeemTicket(ticket: string | null, vmId: string): boolean {
    if (!ticket) return false;
    const key = secretHash(ticket);
    const t = this.tickets.get(key);
    if (!t) return false;
    this.tickets.delete(key);
    return t.vmId === vmId && t.expires > Date.now();
  }
}
