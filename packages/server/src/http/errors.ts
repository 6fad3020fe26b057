import type { FastifyError, FastifyInstance } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
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
    // Authentication is required and none was given (the UI's public file route passed it on):
    // the same 401 as for a route that exists, so nothing tells which paths do.
    if (req.principal === null) {
      return reply.status(401).send({ error: 'Log in or send an API token', timestamp: new Date().toISOString(), code: 'UNAUTHORIZED' });
    }
    return reply
      .status(404)
      .send({ error: `Not found: ${req.method} ${req.url.split('?')[0]}`, timestamp: new Date().toISOString(), code: 'NOT_FOUND' });
  });
}

/**
 * Requests the HTTP parser refuses before any route sees them (a request target that is not a path,
 * malformed headers, a header or request timeout) get their status in the v1 error shape too.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'TIMEOUT', 'The request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'BAD_REQUEST', 'The request headers are too large']
        : [400, 'BAD_REQUEST', 'Malformed HTTP request line or headers (a request target must be a path starting with /)'];
  this.log.debug({ err }, 'client error');
  if (socket.writable) {
    const body = JSON.stringify({ error: message, timestamp: new Date().toISOString(), code });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
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
