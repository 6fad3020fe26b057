// @ts-check
// Loopback TCP ports for tests and the bench: a free one, holding one as "another program" would,
// and asking whether one is free right now.
import net from 'node:net';

/**
 * A free TCP port on 127.0.0.1 (there is a small race until the caller binds it).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Listens on 127.0.0.1:port as "another program" would (if something already holds it, that is the
 * same). Close the returned server to let the port go.
 * @param {number} port
 * @returns {Promise<net.Server>}
 */
export async function holdPort(port) {
  const blocker = net.createServer();
  await new Promise((resolve) => {
    blocker.once('error', () => resolve(undefined));
    blocker.listen(port, '127.0.0.1', () => resolve(undefined));
  });
  return blocker;
}

/**
 * True if nothing listens on 127.0.0.1:port right now (another program's QEMU may hold it).
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
