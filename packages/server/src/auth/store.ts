import type { ApiToken, TokenScope } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

interface TokenRow {
  id: string;
  name: string;
  scope: TokenScope;
  secret_hash: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

interface StoredToken extends ApiToken {
  secretHash: string;
}

const toToken = (r: TokenRow): StoredToken => ({
  id: r.id,
  name: r.name,
  scope: r.scope,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  secretHash: r.secret_hash,
});

/** Persistence of the admin password, sessions and tokens (the audit log is in audit/store.ts). */
export class AuthStore {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
      setSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      addSession: db.prepare('INSERT INTO sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)'),
      getSession: db.prepare<[string], { expires_at: string }>('SELECT expires_at FROM sessions WHERE id_hash = ?'),
      delSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      purgeSessions: db.prepare('DELETE FROM sessions WHERE expires_at < ?'),
      delAllSessions: db.prepare('DELETE FROM sessions'),
      addToken: db.prepare(
        `INSERT INTO tokens (id, name, scope, secret_hash, created_at, expires_at)
         VALUES (@id, @name, @scope, @secret_hash, @created_at, @expires_at)`,
      ),
      getToken: db.prepare<[string], TokenRow>('SELECT * FROM tokens WHERE id = ?'),
      listTokens: db.prepare<[], TokenRow>('SELECT * FROM tokens ORDER BY created_at'),
      revokeToken: db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touchToken: db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?'),
    };
  }

  setting(key: string): string | null {
    return this.q.getSetting.get(key)?.value ?? null;
  }

  setSetting(key: string, value: string): void {
    this.q.setSetting.run(key, value);
  }

  addSession(idHash: string, createdAt: string, expiresAt: string): void {
    this.q.addSession.run(idHash, createdAt, expiresAt);
  }

  sessionExpiry(idHash: string): string | null {
    return this.q.getSession.get(idHash)?.expires_at ?? null;
  }

  deleteSession(idHash: string): void {
    this.q.delSession.run(idHash);
  }

  purgeSessions(now: string): void {
    this.q.purgeSessions.run(now);
  }

  deleteAllSessions(): void {
    this.q.delAllSessions.run();
  }

  addToken(t: { id: string; name: string; scope: TokenScope; secret_hash: string; created_at: string; expires_at: string | null }): void {
    this.q.addToken.run(t);
  }

  token(id: string): StoredToken | null {
    const r = this.q.getToken.get(id);
    return r ? toToken(r) : null;
  }

  tokens(): StoredToken[] {
    return this.q.listTokens.all().map(toToken);
  }

  revokeToken(id: string, at: string): boolean {
    return this.q.revokeToken.run(at, id).changes > 0;
  }

  touchToken(id: string, at: string): void {
    this.q.touchToken.run(at, id);
  }
}
