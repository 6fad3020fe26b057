/**
 * Alerts (issue 14): a local HTTP receiver for notification tests, on 127.0.0.1 and a random port.
 * It records every request; per path, a script of answers (status codes, 'hang' = never answer,
 * 'redirect' = 302 to a file: URL) is used in order, then 200.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

export type Answer = number | 'hang' | 'redirect';

export class Receiver {
  readonly got: Received[] = [];
  private readonly scripts = new Map<string, Answer[]>();
  private readonly waiters = new Set<() => void>();
  private readonly hung = new Set<http.ServerResponse>();
  private server: http.Server | null = null;
  base = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1 << 20) chunks.push(c);
      });
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(body);
        } catch {
          /* not JSON */
        }
        const path = req.url ?? '/';
        this.got.push({ path, headers: req.headers, body, json });
        const answer = this.scripts.get(path)?.shift() ?? 200;
        if (answer === 'hang') this.hung.add(res);
        else if (answer === 'redirect') res.writeHead(302, { location: 'file:///etc/passwd' }).end();
        else res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok');
        for (const w of [...this.waiters]) w();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The answers for `path`, in order (then 200). */
  script(path: string, answers: Answer[]): void {
    this.scripts.set(path, [...answers]);
  }

  on(path: string): Received[] {
    return this.got.filter((g) => g.path === path);
  }

  /** Waits until `pred` holds over what was received (a generous bound: it fails the test, it is not measured). */
  async until(pred: (got: Received[]) => boolean, timeoutMs = 30_000): Promise<Received[]> {
    if (pred(this.got)) return this.got;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`receiver: condition not met; got ${JSON.stringify(this.got.map((g) => [g.path, g.body.slice(0, 120)]))}`));
      }, timeoutMs);
      const check = () => {
        if (!pred(this.got)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.got);
      };
      this.waiters.add(check);
    });
  }

  async close(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
