import type { FastifyInstance } from 'fastify';
import { isApiRoute } from '../lib/request.js';
import type { AuditStore } from './store.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyRequest {
    /** What a request created (e.g. a new VM's id), for the audit log when no path parameter names it. */
    auditTarget: string | null;
  }
}

/**
 * Records every state-changing API request: who, what, which VM/disk/ISO/token, the result.
 * The action is the matched route (`POST /api/tokens` however the path was spelled), including
 * requests the guard refused; a request that matched no route changed nothing and is not recorded.
 */
export function registerAudit(app: FastifyInstance, store: AuditStore): void {
  app.decorateRequest('auditTarget', null);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.is404 ? undefined : req.routeOptions.url;
    if (SAFE.has(req.method) || !isApiRoute(route)) return;
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    store.record({
      at: new Date().toISOString(),
      actor: req.principal?.actor ?? 'anonymous',
      ip: req.ip ?? null,
      action: `${req.method} ${route}`,
      target: params.vm_id ?? params.disk_id ?? params.name ?? params.id ?? req.auditTarget,
      status: reply.statusCode,
    });
  });
}
