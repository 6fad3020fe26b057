import {
  BackupScheduleEnvelope,
  BackupScheduleListEnvelope,
  BackupScheduleParams,
  BackupTaskEnvelope,
  CreateBackupScheduleBody,
  MessageBody,
  PatchBackupScheduleBody,
} from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { BackupSchedules } from '../../backups/schedules.js';
import { CREATED, errorResponses as errors } from '../error-table.js';

/** A request that started a task: it is accepted, the work goes on. */
const ACCEPTED = 202;

/** Backup schedules (issue 13): list, make, change, remove, run now. */
export function backupScheduleRoutes(schedules: BackupSchedules): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['backups'];
    app.get(
      '/backup-schedules',
      { config: { scope: 'read' }, schema: { tags, response: { 200: BackupScheduleListEnvelope, ...errors } } },
      async () => ({ schedules: schedules.list() }),
    );
    app.post(
      '/backup-schedules',
      { config: { scope: 'admin' }, schema: { tags, body: CreateBackupScheduleBody, response: { 201: BackupScheduleEnvelope, ...errors } } },
      async (req, reply) => {
        const schedule = schedules.create(req.body);
        reply.status(CREATED);
        return { schedule };
      },
    );
    app.get(
      '/backup-schedules/:schedule_id',
      { config: { scope: 'read' }, schema: { tags, params: BackupScheduleParams, response: { 200: BackupScheduleEnvelope, ...errors } } },
      async (req) => ({ schedule: schedules.get(req.params.schedule_id) }),
    );
    app.patch(
      '/backup-schedules/:schedule_id',
      {
        config: { scope: 'admin' },
        schema: { tags, params: BackupScheduleParams, body: PatchBackupScheduleBody, response: { 200: BackupScheduleEnvelope, ...errors } },
      },
      async (req) => ({ schedule: schedules.update(req.params.schedule_id, req.body) }),
    );
    app.delete(
      '/backup-schedules/:schedule_id',
      { config: { scope: 'admin' }, schema: { tags, params: BackupScheduleParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        schedules.remove(req.params.schedule_id);
        return { message: 'Backup schedule deleted' };
      },
    );
    app.post(
      '/backup-schedules/:schedule_id/run',
      { config: { scope: 'admin' }, schema: { tags, params: BackupScheduleParams, response: { 202: BackupTaskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = schedules.run(req.params.schedule_id);
        reply.status(ACCEPTED);
        return { task };
      },
    );
  };
}
