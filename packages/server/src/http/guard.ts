import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '@qemu-manager/contract';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { SESSION_COOKIE, isApiRoute, parseCookies, type Principal, type PrincipalSource } from '../lib/request.js';
import { sendError } from './error-table.js';

/**
 * Who may call a route, declared by every route under /api in its options (`config: { scope }`):
 * - `public`: anyone, even when authentication is required (login, logout, the auth status);
 * - `read`: any credential (a read or admin token, a session); only for GET routes;
 * - `admin`: an admin token or a session.
 * The guard authorises on the route the router matched, never on the spelling of the URL.
 */
type RouteScope = 'public' | 'read' | 'admin';
const SCOPES: ReadonlySet<unknown> = new Set<RouteScope>(['public', 'read', 'admin']);

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    scope?: RouteScope;
  }
}

interface GuardOptions {
  /** Host names accepted besides IP literals, `localhost` and this machine's hostname. */
  allowedHosts: readonly string[];
  /** Origins accepted besides the server's own (e.g. https://vms.example.com). */
  allowedOrigins: readonly string[];
  auth: PrincipalSource;
}

export interface Refusal {
  code: ErrorCode;
  message: string;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Only origin-form request targets (`/path?query`) are served. An absolute-form target
 * (`http://host/path`), `*` or anything else is refused before routing can read it differently.
 */
export function checkTarget(target: string | undefined): Refusal | null {
  if (target?.startsWith('/')) return null;
  return { code: 'BAD_REQUEST', message: 'The request target must be a path starting with / (origin-form)' };
}

export function hostName(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : null;
  }
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

/**
 * Host, Origin and credential checks shared by HTTP requests and WebSocket upgrades.
 * - Host must be an IP literal, localhost, this machine's name, or allow-listed (DNS rebinding).
 * - A state-changing request or an upgrade with a foreign Origin is refused (CSRF, cross-site WebSocket).
 * - With authentication on, a session cookie or a bearer token is needed, with the right scope.
 */
export class Guard {
  private readonly names: Set<string>;
  private readonly origins: Set<string>;

  constructor(private readonly opts: GuardOptions) {
    this.names = new Set(['localhost', os.hostname().toLowerCase(), ...opts.allowedHosts.map((h) => h.toLowerCase())]);
    this.origins = new Set(opts.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
  }

  checkHost(hostHeader: string | undefined): Refusal | null {
    const name = hostName(hostHeader);
    if (name && (net.isIP(name) !== 0 || this.names.has(name))) return null;
    return { code: 'HOST_NOT_ALLOWED', message: `Host ${JSON.stringify(hostHeader ?? '')} is not this server (set ALLOWED_HOSTS to add a name)` };
  }

  /** Same-origin or allow-listed Origin; without Origin, a cross-site Sec-Fetch-Site is refused. */
  checkOrigin(headers: IncomingMessage['headers']): Refusal | null {
    const origin = headers.origin;
    const refuse: Refusal = { code: 'ORIGIN_NOT_ALLOWED', message: `Cross-origin request refused (Origin ${origin ?? 'missing'})` };
    if (origin === undefined) return headers['sec-fetch-site'] === 'cross-site' ? refuse : null;
    const o = origin.toLowerCase();
    if (this.origins.has(o)) return null;
    try {
      if (new URL(o).host === (headers.host ?? '').toLowerCase()) return null;
    } catch {
      /* "null" or garbage */
    }
    return refuse;
  }

  principal(headers: IncomingMessage['headers']): Principal | null {
    const { auth } = this.opts;
    const bearer = headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (bearer) return auth.tokenPrincipal(bearer);
    const viaSession = auth.sessionPrincipal(parseCookies(headers.cookie)[SESSION_COOKIE]);
    if (viaSession) return viaSession;
    return auth.required ? null : { actor: 'local', scope: 'admin', kind: 'local' };
  }

  /**
   * The whole check for one HTTP request; null = go on. `scope` is the matched route's declared
   * scope; undefined (no route matched) needs a credential like `read` does, then ends in a 404.
   */
  checkRequest(req: FastifyRequest, scope: RouteScope | undefined): Refusal | null {
    const target = checkTarget(req.raw.url);
    if (target) return target;
    const host = this.checkHost(req.headers.host);
    if (host) return host;
    if (!SAFE_METHODS.has(req.method)) {
      const origin = this.checkOrigin(req.headers);
      if (origin) return origin;
    }
    req.principal = this.principal(req.headers);
    if (scope === 'public') return null;
    if (!req.principal) {
      const bad = req.headers.authorization !== undefined;
      return { code: 'UNAUTHORIZED', message: bad ? 'Invalid, expired or revoked token' : 'Log in or send an API token' };
    }
    if (scope === 'admin' && req.principal.scope !== 'admin') {
      return { code: 'FORBIDDEN', message: 'This token has read scope; this needs admin' };
    }
    return null;
  }

  /** Checks for a WebSocket upgrade (the console): target, Host, Origin, then the caller checks the ticket. */
  checkUpgrade(req: IncomingMessage): Refusal | null {
    return checkTarget(req.url) ?? this.checkHost(req.headers.host) ?? this.checkOrigin(req.headers);
  }
}

export function refuse(reply: FastifyReply, r: Refusal): FastifyReply {
  return sendError(reply, r.code, r.message);
}

/**
 * Every route under /api must declare its scope: a route without one stops the server at startup.
 * Routes outside /api (the web UI's static files) are public.
 */
export function checkRouteScope(route: { url?: string; method: string | string[]; config?: { scope?: unknown } }): RouteScope {
  const { url, method } = route;
  const scope = route.config?.scope;
  if (!isApiRoute(url)) {
    if (scope !== undefined && !SCOPES.has(scope)) throw new Error(`route ${String(method)} ${url}: unknown scope ${JSON.stringify(scope)}`);
    return (scope as RouteScope | undefined) ?? 'public';
  }
  if (!SCOPES.has(scope)) {
    throw new Error(`route ${String(method)} ${url} declares no scope: add config: { scope: 'public' | 'read' | 'admin' }`);
  }
  const methods = Array.isArray(method) ? method : [method];
  if (scope === 'read' && methods.some((m) => m !== 'GET' && m !== 'HEAD')) {
    throw new Error(`route ${String(method)} ${url}: a state-changing route cannot have read scope`);
  }
  return scope as RouteScope;
}

export function registerGuard(app: FastifyInstance, guard: Guard): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, scope: checkRouteScope(route) };
  });
  app.addHook('onRequest', async (req, reply) => {
    const r = guard.checkRequest(req, req.is404 ? undefined : req.routeOptions.config.scope);
    if (r) return refuse(reply, r);
  });
}
