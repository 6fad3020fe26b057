import type { FastifyInstance } from 'fastify';
import type { EventBus } from './bus.js';

const HEARTBEAT_MS = 15_000;

/** GET /api/events: Server-Sent Events of VM, disk and ISO changes. */
export function eventRoutes(bus: EventBus) {
  return async (app: FastifyInstance) => {
    const open = new Set<import('node:http').ServerResponse>();
    // Streams never go idle: end them so the server can close.
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
    });
    app.get('/events', { schema: { tags: ['events'], description: 'Server-Sent Events stream (text/event-stream)' } }, (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 2000\n: connected\n\n');
      const unsubscribe = bus.subscribe((ev) => {
        res.write(`event: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
      });
      open.add(res);
      const beat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
      req.raw.on('close', () => {
        clearInterval(beat);
        unsubscribe();
        open.delete(res);
      });
    });
  };
}
