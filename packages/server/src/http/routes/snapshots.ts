import { CreateSnapshotBody, SnapshotListEnvelope, SnapshotParams, SnapshotTaskEnvelope, VmIdParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SnapshotService } from '../../vms/snapshots.js';
import { errorResponses as errors } from '../error-table.js';

/** A request that started a task: it is accepted, the work goes on. */
const ACCEPTED = 202;

/** Internal snapshots of a VM's disks: list, take, revert, delete (each change a task). */
export function snapshotRoutes(snapshots: SnapshotService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['snapshots'];
    app.get(
      '/vms/:vm_id/snapshots',
      { config: { scope: 'read' }, schema: { tags, params: VmIdParams, response: { 200: SnapshotListEnvelope, ...errors } } },
      async (req) => ({ snapshots: snapshots.list(req.params.vm_id) }),
    );
    app.post(
      '/vms/:vm_id/snapshots',
      { config: { scope: 'admin' }, schema: { tags, params: VmIdParams, body: CreateSnapshotBody, response: { 202: SnapshotTaskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = snapshots.create(req.params.vm_id, req.body);
        reply.status(ACCEPTED);
        return { task };
      },
    );
    app.post(
      '/vms/:vm_id/snapshots/:name/revert',
      { config: { scope: 'admin' }, schema: { tags, params: SnapshotParams, response: { 202: SnapshotTaskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = snapshots.revert(req.params.vm_id, req.params.name);
        reply.status(ACCEPTED);
        return { task };
      },
    );
    app.delete(
      '/vms/:vm_id/snapshots/:name',
      { config: { scope: 'admin' }, schema: { tags, params: SnapshotParams, response: { 202: SnapshotTaskEnvelope, ...errors } } },
      async (req, reply) => {
        const task = snapshots.remove(req.params.vm_id, req.params.name);
        reply.status(ACCEPTED);
        return { task };
      },
    );
  };
}
