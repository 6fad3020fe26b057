import type { TokenScope } from '@qemu-manager/contract';

/**
 * What the HTTP layer (http/) and the domain folders (auth/, audit/) share about a request:
 * who sent it, its cookies, whether it is for the API. Neither side imports the other.
 */

/** The cookie that carries a login session. */
export const SESSION_COOKIE = 'qm_session';

/** Who is making a request. `local` is the unauthenticated loopback default. */
export interface Principal {
  actor: string;
  scope: TokenScope;
  kind: 'session' | 'token' | 'local';
}

/** Turns credentials into a principal; the guard is given one (the auth service). */
export interface PrincipalSource {
  /** True when every request but the public ones needs a credential. */
  readonly required: boolean;
  tokenPrincipal(bearer: string | undefined): Principal | null;
  sessionPrincipal(session: string | undefined): Principal | null;
}

/** True for a route pattern of the API (`/api`, `/api/...`). */
export function isApiRoute(url: string | undefined): boolean {
  return url === '/api' || (url?.startsWith('/api/') ?? false);
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}
