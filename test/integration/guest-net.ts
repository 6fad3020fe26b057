/**
 * Networks (issue 11): probes of the test guest's services through a forward on this host's
 * 127.0.0.1 (its HTTP marker on port 80, its echo on port 7), each with a short deadline.
 */
import net from 'node:net';
import { waitFor } from './harness.js';

/** GET http://127.0.0.1:<port>/: the answer, or null when nothing answers. */
export function httpGet(port: number): Promise<string | null> {
  return exchange(port, 'GET / HTTP/1.0\r\nHost: guest\r\n\r\n', () => false);
}

/** Sends a line to 127.0.0.1:<port> and reads until it comes back (null when nothing answers). */
export async function echo(port: number, line: string): Promise<string | null> {
  const got = await exchange(port, `${line}\n`, (data) => data.includes('\n'));
  return got?.trim() || null;
}

function exchange(port: number, send: string, complete: (data: string) => boolean): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (v: string | null) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(5000, () => done(null));
    sock.on('connect', () => sock.write(send));
    sock.on('data', (d) => {
      data += d.toString('latin1');
      if (complete(data)) done(data);
    });
    sock.on('end', () => done(data));
    sock.on('error', () => done(null));
  });
}

/** True once nothing accepts a connection on 127.0.0.1:<port> (the forward's listener is closed). */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('error', () => resolve(true));
  });
}

/** The guest's HTTP marker through a forward (it answers once httpd runs, after READY). */
export function marker(port: number): Promise<string> {
  return waitFor(async () => {
    const body = await httpGet(port);
    return body?.includes('TESTGUEST_HTTP') ? body : null;
  }, 30_000, `the guest's HTTP marker on 127.0.0.1:${port}`);
}
