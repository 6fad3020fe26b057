import { ConvertDiskBody, DiskIdParams, ImportDiskBody, TaskEnvelope } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DiskImports } from '../../disks/import.js';
import type { DiskConvertService } from '../../vms/disk-convert.js';
import { ACCEPTED_TASK, errorResponses as errors } from '../error-table.js';

/** Import and convert (issue 10): a disk image downloaded from a URL, or a disk converted to another format, as a task. */
export function diskImportRoutes(imports: DiskImports, converts: DiskConvertService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/disks/import',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['disks'],
          body: ImportDiskBody,
          description: 'Download an image (raw, qcow2, vmdk, or an .ova whose vmdk disks become <name>-disk<N>) from an http(s) URL, check it like an upload, convert it to `format` (default qcow2). 202 { task }.',
          response: { 202: TaskEnvelope, ...errors },
        },
      },
      async (req, reply) => {
        const started = imports.start(req.body);
        reply.status(ACCEPTED_TASK);
        return started;
      },
    );
    app.post(
      '/disks/:disk_id/convert',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['disks'],
          params: DiskIdParams,
          body: ConvertDiskBody,
          description: 'A new managed disk `name` in `format`, copied from this disk (stopped or unattached). 202 { task }.',
          response: { 202: TaskEnvelope, ...errors },
        },
      },
      async (req, reply) => {
        const started = await converts.convert(req.params.disk_id, req.body);
        reply.status(ACCEPTED_TASK);
        return started;
      },
    );
  };
}
