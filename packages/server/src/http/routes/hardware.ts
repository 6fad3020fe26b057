import { HardwareBody, VmEnvelope, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { HardwareService } from '../../vms/hardware.js';
import { errorResponses as errors } from '../error-table.js';

/** Hardware options (issue 12): firmware, Secure Boot and TPM of a stopped VM. */
export function hardwareRoutes(hardware: HardwareService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.put(
      '/vms/:vm_id/hardware',
      { config: { scope: 'admin' }, schema: { tags: ['vms'], params: VmIdParams, body: HardwareBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: hardware.set(req.params.vm_id, req.body) }),
    );
  };
}
