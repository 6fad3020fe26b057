import {
  CreateForwardBody,
  CreateNetworkBody,
  CreateNicBody,
  Forward,
  ForwardList,
  ForwardParams,
  MessageBody,
  Network,
  NetworkIdParams,
  NetworkList,
  Nic,
  NicList,
  NicParams,
  UpdateNicBody,
  VmIdParams,
} from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ForwardService, NicService } from '../../networks/nics.js';
import type { NetworkService } from '../../networks/service.js';
import { CREATED, errorResponses as errors } from '../error-table.js';

/** Networks (issue 11): networks (admin to change), a VM's NICs and its port forwards. */
export function networkRoutes(networks: NetworkService, nics: NicService, forwards: ForwardService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const read = { scope: 'read' } as const;
    const admin = { scope: 'admin' } as const;
    const tags = ['networks'];

    app.get('/networks', { config: read, schema: { tags, response: { 200: NetworkList, ...errors } } }, async () => networks.list());

    app.post('/networks', { config: admin, schema: { tags, body: CreateNetworkBody, response: { 201: Network, ...errors } } }, async (req, reply) => {
      const made = await networks.create(req.body);
      req.auditTarget = made.id;
      reply.status(CREATED);
      return made;
    });

    app.delete('/networks/:network_id', { config: admin, schema: { tags, params: NetworkIdParams, response: { 200: MessageBody, ...errors } } }, async (req) => {
      await networks.delete(req.params.network_id);
      return { message: 'Network deleted successfully' };
    });

    app.get('/vms/:vm_id/nics', { config: read, schema: { tags, params: VmIdParams, response: { 200: NicList, ...errors } } }, async (req) => ({
      nics: nics.list(req.params.vm_id),
    }));

    app.post('/vms/:vm_id/nics', { config: admin, schema: { tags, params: VmIdParams, body: CreateNicBody, response: { 201: Nic, ...errors } } }, async (req, reply) => {
      const { nic } = await nics.create(req.params.vm_id, req.body);
      reply.status(CREATED);
      return nic;
    });

    app.patch('/vms/:vm_id/nics/:nic_id', { config: admin, schema: { tags, params: NicParams, body: UpdateNicBody, response: { 200: Nic, ...errors } } }, async (req) => {
      const { nic } = await nics.update(req.params.vm_id, req.params.nic_id, req.body);
      return nic;
    });

    app.delete('/vms/:vm_id/nics/:nic_id', { config: admin, schema: { tags, params: NicParams, response: { 200: MessageBody, ...errors } } }, async (req) => {
      await nics.remove(req.params.vm_id, req.params.nic_id);
      return { message: 'NIC removed successfully' };
    });

    app.get('/vms/:vm_id/forwards', { config: read, schema: { tags, params: VmIdParams, response: { 200: ForwardList, ...errors } } }, async (req) => ({
      forwards: forwards.list(req.params.vm_id),
    }));

    app.post(
      '/vms/:vm_id/forwards',
      { config: admin, schema: { tags, params: VmIdParams, body: CreateForwardBody, response: { 201: Forward, ...errors } } },
      async (req, reply) => {
        const made = await forwards.create(req.params.vm_id, req.body);
        reply.status(CREATED);
        return made;
      },
    );

    app.delete(
      '/vms/:vm_id/forwards/:forward_id',
      { config: admin, schema: { tags, params: ForwardParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        await forwards.remove(req.params.vm_id, req.params.forward_id);
        return { message: 'Forward removed successfully' };
      },
    );
  };
}
