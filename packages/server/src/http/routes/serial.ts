import { SerialLogQuery, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { errorResponses as errors } from '../error-table.js';
import type { SerialService } from '../../console/serial-service.js';

// serial console (issue 14)
export function serialRoutes(serial: SerialService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/vms/:vm_id/serial/log',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['vms'],
          params: VmIdParams,
          querystring: SerialLogQuery,
          response: { 200: Type.String({ description: "The last lines of the VM's serial output (text/plain)" }), ...errors },
        },
      },
      async (req, reply) => {
        const text = serial.tail(req.params.vm_id, Number(req.query.tail ?? '100'));
        return reply.type('text/plain; charset=utf-8').send(text);
      },
    );
  };
}
