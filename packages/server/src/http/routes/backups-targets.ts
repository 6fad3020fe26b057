import { BackupTargetEnvelope, BackupTargetListEnvelope, BackupTargetParams, CreateBackupTargetBody, MessageBody } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { BackupTargets } from '../../backups/targets.js';
import { errorResponses as errors } from '../error-table.js';

const CREATED = 201;

/** Backup targets (issue 13, engine): list with free space, add a directory, forget one. */
export function backupTargetRoutes(targets: BackupTargets): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['backups'];
    app.get(
      '/backup-targets',
      { config: { scope: 'read' }, schema: { tags, response: { 200: BackupTargetListEnvelope, ...errors } } },
      async () => ({ targets: targets.list() }),
    );
    app.post(
      '/backup-targets',
      { config: { scope: 'admin' }, schema: { tags, body: CreateBackupTargetBody, response: { 201: BackupTargetEnvelope, ...errors } } },
      async (req, reply) => {
        const target = targets.add(req.body);
        reply.status(CREATED);
        return { target };
      },
    );
    app.delete(
      '/backup-targets/:target_name',
      { config: { scope: 'admin' }, schema: { tags, params: BackupTargetParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        targets.remove(req.params.target_name);
        return { message: 'Backup target removed (its directory and files are left as they are)' };
      },
    );
  };
}
