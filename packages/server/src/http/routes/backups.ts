import {
  BackupEnvelope,
  BackupIdParams,
  BackupListEnvelope,
  BackupListQuery,
  BackupTaskEnvelope,
  CreateBackupBody,
  VmIdParams,
} from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { BackupService } from '../../backups/service.js';
import { errorResponses as errors } from '../error-table.js';

/** A request that started a task: it is accepted, the work goes on. */
const ACCEPTED = 202;

/** Backups (issue 13, engine): back up a VM now (a task), list backups, read one. */
export function backupRoutes(backups: BackupService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['backups'];
    app.post(
      '/vms/:vm_id/backups',
      { config: { scope: 'admin' }, schema: { tags, params: VmIdParams, body: CreateBackupBody, response: { 202: BackupTaskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = backups.start(req.params.vm_id, req.body);
        reply.status(ACCEPTED);
        return { task };
      },
    );
    app.get(
      '/backups',
      { config: { scope: 'read' }, schema: { tags, querystring: BackupListQuery, response: { 200: BackupListEnvelope, ...errors } } },
      async (req) => ({ backups: backups.list({ ...(req.query.vm !== undefined ? { vm: req.query.vm } : {}), ...(req.query.target !== undefined ? { target: req.query.target } : {}) }) }),
    );
    app.get(
      '/backups/:backup_id',
      { config: { scope: 'read' }, schema: { tags, params: BackupIdParams, response: { 200: BackupEnvelope, ...errors } } },
      async (req) => ({ backup: backups.get(req.params.backup_id) }),
    );
  };
}
