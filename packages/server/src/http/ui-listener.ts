import type { FastifyInstance } from 'fastify';
import net from 'node:net';
import type { Config } from '../config.js';

/**
 * The second listener (UI_PORT, 3001 by default): a plain TCP listener on HOST that hands each
 * connection to the main HTTP server, so the same app answers there — the web UI, the API and the
 * console — with the same TLS, connection limits, guard (Host, Origin, credentials) and logging.
 * When the port cannot be had (taken by another server or a dev server) it logs a warning and the
 * server goes on serving on PORT only; it never stops the server from starting. The caller closes
 * the returned listener when it shuts down (its connections belong to the main server).
 */
export async function listenUiPort(app: FastifyInstance, config: Config): Promise<net.Server | null> {
  const port = config.uiPort;
  if (port === null) return null;
  const server = net.createServer((socket) => {
    app.server.emit('connection', socket);
  });
  server.maxConnections = config.http.maxConnections;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    app.log.warn({ uiPort: port, code }, `UI_PORT ${port} is not available (${code ?? (err as Error).message}); the web UI is served on PORT ${config.port} only`);
    return null;
  }
  server.on('error', (err) => app.log.warn({ err }, 'UI_PORT listener error'));
  app.log.info({ uiPort: port }, `web UI also at ${config.tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
  return server;
}
