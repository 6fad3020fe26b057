import net from 'node:net';

const VNC_BASE_PORT = 5900;
/** Exclusive upper bound: any TCP port from 5900 up can hold a display. */
const VNC_MAX_PORT = 65536;

/** True if nothing listens on 127.0.0.1:port (we can bind it ourselves right now). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The lowest port from `from` that is not in `taken`, or null if none is left below VNC_MAX_PORT. */
export function lowestFreePort(taken: ReadonlySet<number>, from = VNC_BASE_PORT): number | null {
  for (let p = from; p < VNC_MAX_PORT; p++) if (!taken.has(p)) return p;
  return null;
}
