import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import fs from 'node:fs';
import { trustProxyOption, type Config } from '../config.js';
import { AppError } from '../lib/errors.js';
import { clientErrorHandler, registerErrorHandling } from './errors.js';
import { registerGuard, type Guard } from './guard.js';
import { registerConnectionLimits, serverOptions } from './limits.js';

export const API_VERSION = '0.1.0';

/**
 * The HTTP server without routes: TLS or plain, the logger (no secrets, no query strings), the
 * connection limits, the JSON-only body parsers, the error table's answers and the guard (target,
 * Host, Origin, scope). Routes, the console upgrade and the UI are registered by the caller.
 */
export async function createHttpServer(config: Config, opts: { guard: Guard; spa: boolean }): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
      // URLs are logged without their query string: console tickets travel there.
      serializers: { req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url.split('?')[0] }) },
    },
    ...(config.tls
      ? { https: { cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key), ...serverOptions(config) } }
      : { http: serverOptions(config) }),
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    trustProxy: trustProxyOption(config.trustProxy),
    bodyLimit: 1 << 20,
    clientErrorHandler, // what the HTTP parser refuses, in the v1 error shape
    logController: new LogController({ disableRequestLogging: config.logLevel !== 'debug' }),
    // Closed schemas mean refusal: never strip unknown fields or turn "1" into 1 silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'QEMU Manager API', version: API_VERSION, description: 'v1 API plus extensions' },
      servers: [{ url: '/' }],
    },
  });
  registerErrorHandling(app, { spa: opts.spa });
  registerConnectionLimits(app, config);
  registerGuard(app, opts.guard);
  registerJsonOnly(app);
  return app;
}

/**
 * JSON only: a text/plain body (what a cross-site form can send) is refused with 415. A POST
 * without a body but with a JSON content type is an empty body, not an error.
 */
function registerJsonOnly(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new AppError('BAD_REQUEST', 'Body is not valid JSON'), undefined);
    }
  });
}
