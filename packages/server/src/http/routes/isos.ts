import { IsoEnvelope, IsoListEnvelope, IsoNameParams, MessageBody } from '@qemu-manager/contract';
import { CREATED, errorResponses as errors } from '../error-table.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import type { IsoService } from '../../isos/service.js';


export function isoRoutes(isos: IsoService, isMounted: (file: string) => boolean): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['isos'];
    // Uploads are streamed to disk by the service: hand the raw request stream through unparsed.
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

    app.get('/isos', { config: { scope: 'read' }, schema: { tags, response: { 200: IsoListEnvelope } } }, async () => ({ isos: isos.list() }));

    app.put(
      '/isos/:name',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          params: IsoNameParams,
          description: 'Upload an ISO: the request body is the raw file (Content-Type: application/octet-stream).',
          response: { 201: IsoEnvelope, ...errors },
        },
      },
      async (req, reply) => {
        const len = req.headers['content-length'];
        const iso = await isos.upload(req.params.name, req.body as Readable, len ? Number(len) : null);
        reply.status(CREATED);
        return { iso };
      },
    );

    app.delete(
      '/isos/:name',
      { config: { scope: 'admin' }, schema: { tags, params: IsoNameParams, response: { 200: MessageBody, ...errors } } },
      async (req) => {
        isos.delete(req.params.name, isMounted);
        return { message: 'ISO deleted successfully' };
      },
    );
  };
}
