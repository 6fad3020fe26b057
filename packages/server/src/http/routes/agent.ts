import { AgentState, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AgentService } from '../../vms/agent.js';
import { errorResponses as errors } from '../error-table.js';

/** GET /api/vms/{vm_id}/agent (the guest agent, issue 14). No exec route: the issue forbids it. */
export function agentRoutes(agent: AgentService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/vms/:vm_id/agent',
      { config: { scope: 'read' }, schema: { tags: ['vms'], params: VmIdParams, response: { 200: AgentState, ...errors } } },
      async (req) => agent.state(req.params.vm_id),
    );
  };
}
