import {
  CreateDiskBody,
  CreatedDiskEnvelope,
  DiskEnvelope,
  DiskIdParams,
  DiskListEnvelope,
  MessageBody,
} from '@qemu-manager/contract';
import { CREATED, errorResponses as errors } from '../error-table.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DiskService } from '../../disks/service.js';


export function diskRoutes(disks: DiskService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['disks'];
    app.get('/disks', { config: { scope: 'read' }, schema: { tags, response: { 200: DiskListEnvelope } } }, async () => ({ disks: disks.list() }));

    app.post('/disks', { config: { scope: 'admin' }, schema: { tags, body: CreateDiskBody, response: { 201: CreatedDiskEnvelope, ...errors } } }, async (req, reply) => {
      const created = disks.create(req.body);
      req.auditTarget = created.disk.id;
      reply.status(CREATED);
      return created;
    });

    app.get(
      '/disks/:disk_id',
      { config: { scope: 'read' }, schema: { tags, params: DiskIdParams, response: { 200: DiskEnvelope, ...errors } } },
      async (req) => ({ disk: await disks.get(req.params.disk_id) }),
    );

    app.delete(
      '/disks/:disk_id',
      { config: { scope: 'admin' }, schema: { tags, params: DiskIdParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        disks.delete(req.params.disk_id);
        return { message: 'Disk deleted successfully' };
      },
    );
  };
}
