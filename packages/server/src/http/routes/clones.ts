import { CloneDiskBody, CloneVmBody, DiskIdParams, TaskEnvelope, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CloneService } from '../../vms/clone.js';
import { ACCEPTED_TASK, errorResponses as errors } from '../error-table.js';

/** Clones and backing chains (issue 10): a VM's or one disk's clone, full or linked, as a task. */
export function cloneRoutes(clones: CloneService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/vms/:vm_id/clone',
      { config: { scope: 'admin' }, schema: { tags: ['vms'], params: VmIdParams, body: CloneVmBody, response: { 202: TaskEnvelope, ...errors } } },
      async (req, reply) => {
        const started = await clones.cloneVm(req.params.vm_id, req.body);
        reply.status(ACCEPTED_TASK);
        return started;
      },
    );
    app.post(
      '/disks/:disk_id/clone',
      { config: { scope: 'admin' }, schema: { tags: ['disks'], params: DiskIdParams, body: CloneDiskBody, response: { 202: TaskEnvelope, ...errors } } },
      async (req, reply) => {
        const started = await clones.cloneDisk(req.params.disk_id, req.body);
        reply.status(ACCEPTED_TASK);
        return started;
      },
    );
  };
}
