import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';

/**
 * GET /api/docs: interactive documentation of /api/openapi.json (Swagger UI, its files served by
 * this server: no CDN). Every route of it has the scope of /api/openapi.json (read): what the
 * document says is visible to whoever may read it, nothing more. "Try it out" sends the real
 * requests with the browser's own session, through the same guard as any other request.
 */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(async (docs) => {
    // The plugin registers its routes (page, assets, the document) through route(); each one gets
    // the declared scope here, before the guard's check that every /api route has one.
    // Called with the plugin's own (child) instance as `this`, so its prefix applies.
    const route = Reflect.get(docs, 'route') as (this: FastifyInstance, opts: RouteOptions) => FastifyInstance;
    docs.route = function (this: FastifyInstance, opts: RouteOptions) {
      return route.call(this, { ...opts, config: { ...opts.config, scope: 'read' } });
    } as typeof docs.route;
    await docs.register(fastifySwaggerUi, {
      routePrefix: '/api/docs',
      // The page loads the document from /api/docs/json (the same as /api/openapi.json); no
      // validator badge (it would call out to validator.swagger.io).
      uiConfig: { deepLinking: true },
      validatorUrl: false,
      theme: { title: 'QEMU Manager API' },
    });
  });
}
