import { DiskEnvelope, DiskUploadParams } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import type { DiskUploads } from '../../disks/upload.js';
import { CREATED, errorResponses as errors } from '../error-table.js';

/** PUT /api/disks/upload/{name}: a disk image as the raw request body, streamed to disk. */
export function diskUploadRoutes(uploads: DiskUploads): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Streamed by the service: the raw request stream goes through unparsed.
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    app.put(
      '/disks/upload/:name',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['disks'],
          params: DiskUploadParams,
          description: 'Upload a raw, qcow2 or vmdk image (Content-Type: application/octet-stream); it must be self-contained (no backing or data file). 201 { disk } once checked.',
          response: { 201: DiskEnvelope, ...errors },
        },
      },
      async (req, reply) => {
        const len = req.headers['content-length'];
        const disk = await uploads.upload(req.params.name, req.body as Readable, len ? Number(len) : null);
        req.auditTarget = disk.id;
        reply.status(CREATED);
        return { disk };
      },
    );
  };
}
