import { BackupIdParams, BackupTaskEnvelope, ImportBackupBody, RestoreBackupBody } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { BackupDelete } from '../../backups/delete.js';
import type { BackupImports } from '../../backups/import.js';
import type { BackupRestore } from '../../backups/restore.js';
import type { BackupVerify } from '../../backups/verify.js';
import { ACCEPTED_TASK, errorResponses as errors } from '../error-table.js';

/** Backups: restore, verify, delete (a merge when later incrementals need it), import (issue 13). Each a task. */
export function backupOpsRoutes(ops: { imports: BackupImports; verify: BackupVerify; restore: BackupRestore; remove: BackupDelete }): FastifyPluginAsyncTypebox {
  return async (app) => {
    const response = { 202: BackupTaskEnvelope, ...errors };
    app.post('/backups/import', { config: { scope: 'admin' }, schema: { tags: ['backups'], body: ImportBackupBody, response } }, async (req, reply) => {
      const started = ops.imports.start(req.body.path);
      reply.status(ACCEPTED_TASK);
      return started;
    });
    app.post('/backups/:backup_id/verify', { config: { scope: 'admin' }, schema: { tags: ['backups'], params: BackupIdParams, response } }, async (req, reply) => {
      const started = ops.verify.start(req.params.backup_id);
      reply.status(ACCEPTED_TASK);
      return started;
    });
    app.post(
      '/backups/:backup_id/restore',
      { config: { scope: 'admin' }, schema: { tags: ['backups'], params: BackupIdParams, body: RestoreBackupBody, response } },
      async (req, reply) => {
        const started = ops.restore.start(req.params.backup_id, req.body);
        reply.status(ACCEPTED_TASK);
        return started;
      },
    );
    app.delete('/backups/:backup_id', { config: { scope: 'admin' }, schema: { tags: ['backups'], params: BackupIdParams, response } }, async (req, reply) => {
      const started = ops.remove.start(req.params.backup_id);
      reply.status(ACCEPTED_TASK);
      return started;
    });
  };
}
