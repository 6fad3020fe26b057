// Pure rules for API tokens: state from timestamps, expiry choices, the request body, ordering.
import type { ApiToken, CreateTokenBody, TokenScope } from '@qemu-manager/contract';

export type TokenState = 'active' | 'expired' | 'revoked';

/** Revoked wins over expired; a token without expiry never expires. */
export function tokenState(tok: Pick<ApiToken, 'expiresAt' | 'revokedAt'>, now: number): TokenState {
  if (tok.revokedAt) return 'revoked';
  if (tok.expiresAt) {
    const at = Date.parse(tok.expiresAt);
    if (!Number.isNaN(at) && at <= now) return 'expired';
  }
  return 'active';
}

export const EXPIRY_CHOICES = ['never', '1d', '30d', '90d', '1y'] as const;
export type ExpiryChoice = (typeof EXPIRY_CHOICES)[number];

const DAY = 86_400;
const SECONDS: Record<ExpiryChoice, number | undefined> = {
  never: undefined,
  '1d': DAY,
  '30d': 30 * DAY,
  '90d': 90 * DAY,
  '1y': 365 * DAY,
};
/** The server accepts nothing shorter. */
export const MIN_EXPIRES_IN = 60;

/** Seconds until expiry for the request, or undefined for "never". */
export function expiresInSeconds(choice: ExpiryChoice): number | undefined {
  const s = SECONDS[choice];
  return s === undefined ? undefined : Math.max(MIN_EXPIRES_IN, s);
}

/** The POST /api/tokens body; `expiresIn` is left out for tokens that never expire. */
export function createTokenBody(name: string, scope: TokenScope, expiry: ExpiryChoice): CreateTokenBody {
  const expiresIn = expiresInSeconds(expiry);
  return expiresIn === undefined ? { name: name.trim(), scope } : { name: name.trim(), scope, expiresIn };
}

/** Active tokens first, then expired, then revoked; newest first within each group. */
export function sortTokens(tokens: ApiToken[], now: number): ApiToken[] {
  const rank: Record<TokenState, number> = { active: 0, expired: 1, revoked: 2 };
  return [...tokens].sort(
    (a, b) => rank[tokenState(a, now)] - rank[tokenState(b, now)] || b.createdAt.localeCompare(a.createdAt),
  );
}

/** A command line that proves the token works. */
export const curlExample = (origin: string, token: string): string =>
  `curl -H "Authorization: Bearer ${token}" ${origin}/api/vms`;
