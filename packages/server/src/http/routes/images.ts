import { CreateImageBody, ImageCatalogueEnvelope, ImageEnvelope, ImageListEnvelope, ImageNameParams, MessageBody, TaskEnvelope } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import type { ImageService } from '../../images/service.js';
import { ACCEPTED_TASK, CREATED, errorResponses as errors } from '../error-table.js';

/** Images (issue 12): the library of ready disks, the catalogue of well-known cloud images. */
export function imageRoutes(images: ImageService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['images'];
    // Uploads are streamed by the service: the raw request stream goes through unparsed.
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

    app.get('/images', { config: { scope: 'read' }, schema: { tags, response: { 200: ImageListEnvelope } } }, async () => ({ images: images.list() }));

    app.get(
      '/images/catalogue',
      { config: { scope: 'read' }, schema: { tags, description: 'Well-known cloud images the library can download (data shipped with the server).', response: { 200: ImageCatalogueEnvelope } } },
      async () => ({ catalogue: images.catalogue() }),
    );

    app.post(
      '/images',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          body: CreateImageBody,
          description: 'Download an image from an http(s) URL (checksum verified: `sha256`, or the entry for its file name in the list at `checksumUrl`), check it like a disk upload and store it as qcow2. 202 { task } (image.download).',
          response: { 202: TaskEnvelope, ...errors },
        },
      },
      async (req, reply) => {
        const started = images.start(req.body);
        reply.status(ACCEPTED_TASK);
        return started;
      },
    );

    app.put(
      '/images/upload/:image_name',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          params: ImageNameParams,
          description: 'Upload an image (raw, qcow2, vmdk, vdi or vhdx; Content-Type: application/octet-stream); it must be self-contained. Stored as qcow2. 201 { image } once checked.',
          response: { 201: ImageEnvelope, ...errors },
        },
      },
      async (req, reply) => {
        const len = req.headers['content-length'];
        const image = await images.upload(req.params.image_name, req.body as Readable, len ? Number(len) : null);
        reply.status(CREATED);
        return { image };
      },
    );

    app.delete(
      '/images/:image_name',
      { config: { scope: 'admin' }, schema: { tags, params: ImageNameParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        images.delete(req.params.image_name);
        return { message: 'Image deleted successfully' };
      },
    );
  };
}
