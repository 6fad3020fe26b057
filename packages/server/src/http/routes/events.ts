import type { FastifyInstance } from 'fastify';
import { AppError } from '../../lib/errors.js';
import type { EventBus } from '../../events/bus.js';

const HEARTBEAT_MS = 15_000;

/** GET /api/events: Server-Sent Events of VM, disk and ISO changes. */
export function eventRoutes(bus: EventBus, opts: { maxPerClient: number }) {
  return async (app: FastifyInstance) => {
    const open = new Set<import('node:http').ServerResponse>();
    // Open streams per client address: a stream holds a connection for as long as the client likes.
    const perClient = new Map<string, number>();
    // Streams never go idle: end them so the server can close.
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
    });
    app.get(
      '/events',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['events'],
          // The messages are the contract's ServerEvent schemas (validated against a real server in
          // test/integration/events.test.ts); the stream itself has no JSON response schema.
          description: 'Server-Sent Events stream (text/event-stream): each `event:` name is the `type` of the JSON in `data` (ServerEvent in @qemu-manager/contract)',
        },
      },
      (req, reply) => {
        const client = req.ip;
        const held = perClient.get(client) ?? 0;
        if (held >= opts.maxPerClient) {
          reply.header('retry-after', '10');
          return reply.send(new AppError('RATE_LIMITED', `At most ${opts.maxPerClient} event streams per client; close one first`));
        }
        perClient.set(client, held + 1);
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
          const left = (perClient.get(client) ?? 1) - 1;
          if (left <= 0) perClient.delete(client);
          else perClient.set(client, left);
        });
      },
    );
  };
}
