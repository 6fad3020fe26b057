import { AuditList, AuditQuery } from '@qemu-manager/contract';
import { errorResponses as errors } from '../error-table.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuditStore } from '../../audit/store.js';


/** GET /api/audit: the audit log, newest first, admin only. */
export function auditRoutes(store: AuditStore): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/audit', { config: { scope: 'admin' }, schema: { tags: ['auth'], querystring: AuditQuery, response: { 200: AuditList, ...errors } } }, async (req) => {
      const limit = Math.min(Number(req.query.limit ?? 100), 1000);
      const before = req.query.before ? Number(req.query.before) : Number.MAX_SAFE_INTEGER;
      return { entries: store.list(limit, before) };
    });
  };
}
