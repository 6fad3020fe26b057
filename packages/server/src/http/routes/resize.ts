import { DiskIdParams, ResizeDiskBody, ResizeDiskEnvelope } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DiskResizeService } from '../../vms/disk-resize.js';
import { errorResponses as errors } from '../error-table.js';

/** The status of a route that started a task. */
const ACCEPTED = 202;

/** POST /api/disks/{disk_id}/resize: grows a disk (a `disk.resize` task). */
export function diskResizeRoutes(resize: DiskResizeService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/disks/:disk_id/resize',
      { config: { scope: 'admin' }, schema: { tags: ['disks'], params: DiskIdParams, body: ResizeDiskBody, response: { 202: ResizeDiskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = resize.resize(req.params.disk_id, req.body);
        reply.status(ACCEPTED);
        return { task };
      },
    );
  };
}
