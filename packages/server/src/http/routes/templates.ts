import { VmEnvelope, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TemplateService } from '../../vms/template.js';
import { errorResponses as errors } from '../error-table.js';

/**
 * Templates (issue 12): a stopped VM becomes a template (its disks read-only bases of linked
 * clones; it cannot start) and back. New VMs from a template: POST /api/vms { name, template }.
 */
export function templateRoutes(templates: TemplateService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const schema = { tags: ['vms'], params: VmIdParams, response: { 200: VmEnvelope, ...errors } };
    app.post('/vms/:vm_id/template', { config: { scope: 'admin' }, schema }, async (req) => ({ vm: templates.make(req.params.vm_id) }));
    app.delete('/vms/:vm_id/template', { config: { scope: 'admin' }, schema }, async (req) => ({ vm: templates.unmake(req.params.vm_id) }));
  };
}
