import {
  AttachDiskBody,
  CreateVmBody,
  DeleteVmQuery,
  DiskPathBody,
  IsoPathBody,
  MessageBody,
  OptionalShutdownBody,
  StartEnvelope,
  TaskEnvelope,
  UpdateResourcesBody,
  VmEnvelope,
  VmIdParams,
  VmListEnvelope,
} from '@qemu-manager/contract';
import { ACCEPTED_TASK, CREATED, errorResponses as errors } from '../error-table.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PowerService } from '../../vms/power.js';
import type { VmService } from '../../vms/service.js';
import type { TemplateService } from '../../vms/template.js'; // templates (issue 12)


export function vmRoutes(vms: VmService, power: PowerService, templates?: TemplateService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['vms'];
    const byId = { params: VmIdParams, tags };
    const read = { scope: 'read' } as const;
    const admin = { scope: 'admin' } as const;

    app.get('/vms', { config: read, schema: { tags, response: { 200: VmListEnvelope } } }, async (_req, reply) =>
      // Already-serialized JSON (cached between changes): Fastify sends a Buffer as it is.
      reply.type('application/json; charset=utf-8').send(vms.listJson() as never),
    );

    app.post('/vms', { config: admin, schema: { tags, body: CreateVmBody, response: { 201: VmEnvelope, 202: TaskEnvelope, ...errors } } }, async (req, reply) => {
      // templates (issue 12): a VM from a template is a linked clone, made by a task
      if (req.body.template !== undefined && templates) {
        const started = await templates.create(req.body);
        req.auditTarget = req.body.template;
        reply.status(ACCEPTED_TASK);
        return started;
      }
      const made = vms.create(req.body);
      // images (issue 12): from an image, the VM is made by a vm.create task
      if ('task' in made) {
        reply.status(ACCEPTED_TASK);
        return made;
      }
      req.auditTarget = made.id;
      reply.status(CREATED);
      return { vm: made };
    });

    app.get('/vms/:vm_id', { config: read, schema: { ...byId, response: { 200: VmEnvelope, ...errors } } }, async (req) => ({
      vm: vms.get(req.params.vm_id),
    }));

    app.delete(
      '/vms/:vm_id',
      { config: admin, schema: { ...byId, querystring: DeleteVmQuery, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        await vms.delete(req.params.vm_id, req.query.force === 'true');
        return { message: 'VM deleted successfully' };
      },
    );

    app.post('/vms/:vm_id/start', { config: admin, schema: { ...byId, response: { 200: StartEnvelope, ...errors } } }, async (req) =>
      power.start(req.params.vm_id),
    );

    app.post('/vms/:vm_id/stop', { config: admin, schema: { ...byId, response: { 200: MessageBody, ...errors } } }, async (req) => {
      await power.stop(req.params.vm_id);
      return { message: 'VM stopped successfully' };
    });

    app.post(
      '/vms/:vm_id/shutdown',
      { config: admin, schema: { ...byId, body: OptionalShutdownBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: await power.shutdown(req.params.vm_id, req.body ?? {}) }),
    );
    app.post(
      '/vms/:vm_id/reboot',
      { config: admin, schema: { ...byId, body: OptionalShutdownBody, response: { 200: StartEnvelope, ...errors } } },
      async (req) => power.reboot(req.params.vm_id, req.body ?? {}),
    );
    for (const action of ['reset', 'pause', 'resume'] as const) {
      app.post(`/vms/:vm_id/${action}`, { config: admin, schema: { ...byId, response: { 200: VmEnvelope, ...errors } } }, async (req) => ({
        vm: await power[action](req.params.vm_id),
      }));
    }

    app.patch(
      '/vms/:vm_id/resources',
      { config: admin, schema: { ...byId, body: UpdateResourcesBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: vms.updateResources(req.params.vm_id, req.body) }),
    );

    app.post(
      '/vms/:vm_id/disks/attach',
      { config: admin, schema: { ...byId, body: AttachDiskBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: await vms.attachDisk(req.params.vm_id, req.body.diskPath, req.body.format) }),
    );
    app.post(
      '/vms/:vm_id/disks/detach',
      { config: admin, schema: { ...byId, body: DiskPathBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: vms.detachDisk(req.params.vm_id, req.body.diskPath) }),
    );

    app.post(
      '/vms/:vm_id/iso/mount',
      { config: admin, schema: { ...byId, body: IsoPathBody, response: { 200: VmEnvelope, ...errors } } },
      async (req) => ({ vm: await vms.mountIso(req.params.vm_id, req.body.isoPath) }),
    );
    app.post('/vms/:vm_id/iso/unmount', { config: admin, schema: { ...byId, response: { 200: VmEnvelope, ...errors } } }, async (req) => ({
      vm: await vms.unmountIso(req.params.vm_id),
    }));
  };
}
