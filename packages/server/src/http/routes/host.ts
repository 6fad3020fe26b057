import { AutostartBody, OptionalHostShutdownBody, TaskEnvelope, VmEnvelope, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Autostart } from '../../host/autostart.js';
import type { HostShutdown } from '../../host/shutdown.js';
import { ACCEPTED_TASK, errorResponses as errors } from '../error-table.js';

/** Service and autostart (issue 15): a VM's autostart setting, and the shutdown of every VM before the host goes down. */
export function hostRoutes(autostart: Autostart, shutdown: HostShutdown): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.put(
      '/vms/:vm_id/autostart',
      { config: { scope: 'admin' }, schema: { tags: ['vms'], params: VmIdParams, body: AutostartBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: autostart.set(req.params.vm_id, req.body) }),
    );
    app.post(
      '/host/shutdown-vms',
      { config: { scope: 'admin' }, schema: { tags: ['host'], body: OptionalHostShutdownBody, response: { 202: TaskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = shutdown.start(req.body ?? {});
        reply.status(ACCEPTED_TASK);
        return { task };
      },
    );
  };
}
