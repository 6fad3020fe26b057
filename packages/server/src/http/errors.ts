import type { ErrorCode } from '@qemu-manager/contract';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import { isAppError } from '../lib/errors.js';
import { codeForStatus, rawErrorResponse, sendError, statusOf } from './error-table.js';

/** Fastify's own client errors, by their code, to ours. */
const FASTIFY_CODES: Partial<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

/**
 * One place renders every error in the v1 shape `{ error, timestamp }` plus `code`, with the
 * status the error table gives the code. Validation is VALIDATION; anything unexpected is a 500
 * whose message is logged, never sent.
 */
export function registerErrorHandling(app: FastifyInstance, opts: { spa: boolean }): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isAppError(err)) {
      if (statusOf(err.code) >= 500) req.log.error({ err }, err.message);
      return sendError(reply, err.code, err.message);
    }
    if (err.validation) return sendError(reply, 'VALIDATION', validationMessage(err));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendError(reply, (err.code ? FASTIFY_CODES[err.code] : undefined) ?? codeForStatus(status), err.message);
    }
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, 'INTERNAL', 'Internal server error');
  });

  app.setNotFoundHandler((req, reply) => {
    // With the UI served, client-side routes (e.g. /vms/<id>/console) get the app shell; /api stays JSON.
    if (opts.spa && req.method === 'GET' && !req.url.startsWith('/api')) return reply.sendFile('index.html');
    // Authentication is required and none was given (the UI's public file route passed it on):
    // the same 401 as for a route that exists, so nothing tells which paths do.
    if (req.principal === null) return sendError(reply, 'UNAUTHORIZED', 'Log in or send an API token');
    return sendError(reply, 'NOT_FOUND', `Not found: ${req.method} ${req.url.split('?')[0]}`);
  });
}

/**
 * Requests the HTTP parser refuses before any route sees them (a request target that is not a path,
 * malformed headers, a header or request timeout) get their status in the v1 error shape too.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message]: [ErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['REQUEST_TIMEOUT', 'The request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? ['HEADERS_TOO_LARGE', 'The request headers are too large']
        : ['BAD_REQUEST', 'Malformed HTTP request line or headers (a request target must be a path starting with /)'];
  this.log.debug({ err }, 'client error');
  if (socket.writable) socket.write(rawErrorResponse(code, message));
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
