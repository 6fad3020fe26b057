import type { FastifyError, FastifyInstance } from 'fastify';
import { isAppError } from '../lib/errors.js';

/** Fastify's own client errors that we pass through with their status and a stable code. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

/**
 * One place renders every error in the v1 shape `{ error, timestamp }` plus `code`.
 * Domain errors keep their status; validation is 400; anything unexpected is a 500 whose message
 * is logged, never sent.
 */
export function registerErrorHandling(app: FastifyInstance, opts: { spa: boolean }): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const timestamp = new Date().toISOString();
    if (isAppError(err)) {
      if (err.statusCode >= 500) req.log.error({ err }, err.message);
      return reply.status(err.statusCode).send({ error: err.message, timestamp, code: err.code });
    }
    if (err.validation) {
      return reply.status(400).send({ error: validationMessage(err), timestamp, code: 'VALIDATION' });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply
        .status(status)
        .send({ error: err.message, timestamp, code: (err.code && FASTIFY_CODES[err.code]) ?? 'BAD_REQUEST' });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ error: 'Internal server error', timestamp, code: 'INTERNAL' });
  });

  app.setNotFoundHandler((req, reply) => {
    // With the UI served, client-side routes (e.g. /vms/<id>/console) get the app shell; /api stays JSON.
    if (opts.spa && req.method === 'GET' && !req.url.startsWith('/api')) return reply.sendFile('index.html');
    return reply
      .status(404)
      .send({ error: `Not found: ${req.method} ${req.url.split('?')[0]}`, timestamp: new Date().toISOString(), code: 'NOT_FOUND' });
  });
}

function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  const where = err.validationContext ?? 'body';
  const field = first.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
  if (first.keyword === 'additionalProperties') {
    const extra = (first.params as { additionalProperty?: string }).additionalProperty;
    return `${where} has an unknown field: ${extra}`;
  }
  if (first.keyword === 'required') {
    return `${where} is missing the field: ${(first.params as { missingProperty?: string }).missingProperty}`;
  }
  if (first.keyword === 'pattern' && /name$/.test(field)) {
    return `${where}.${field} may only contain letters, digits, dot, dash and underscore, starting with a letter or digit (max 63)`;
  }
  return `${where}${field ? '.' + field : ''} ${first.message ?? 'is invalid'}`;
}
