import { CloudInitBody, CloudInitEnvelope, MessageBody, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CloudInitService } from '../../vms/cloud-init.js';
import { errorResponses as errors } from '../error-table.js';

/**
 * Cloud-init (issue 12): a VM's NoCloud config. All three need admin scope, GET too: user-data
 * may hold secrets. Allowed in any VM state; a running VM gets the config at its next start.
 */
export function cloudInitRoutes(cloudInit: CloudInitService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const config = { scope: 'admin' as const };
    const tags = ['vms'];
    app.get(
      '/vms/:vm_id/cloud-init',
      { config, schema: { tags, params: VmIdParams, response: { 200: CloudInitEnvelope, ...errors } } },
      async (req) => ({ cloudInit: cloudInit.get(req.params.vm_id) }),
    );
    app.put(
      '/vms/:vm_id/cloud-init',
      { config, schema: { tags, params: VmIdParams, body: CloudInitBody, response: { 200: CloudInitEnvelope, ...errors } } },
      async (req) => ({ cloudInit: cloudInit.set(req.params.vm_id, req.body) }),
    );
    app.delete(
      '/vms/:vm_id/cloud-init',
      { config, schema: { tags, params: VmIdParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        cloudInit.delete(req.params.vm_id);
        return { message: 'Cloud-init config deleted; the VM starts without a seed from now on' };
      },
    );
  };
}
