/** The API over fetch: JSON in and out, the v1 error shape turned into an ApiError. */
import type { ErrorBody } from '@qemu-manager/contract';
import type { CliConfig } from './config.js';

/** An answer of the API that is not a success (exit status 1), or a server that cannot be reached. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class Api {
  constructor(readonly config: CliConfig) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.config.token ? { authorization: `Bearer ${this.config.token}` } : {}), ...extra };
  }

  /** A raw request under /api (`p` without the prefix). */
  async fetch(method: string, p: string, init: { body?: BodyInit; headers?: Record<string, string>; duplex?: 'half'; signal?: AbortSignal } = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.config.url}/api${p}`, { method, ...init, headers: this.headers(init.headers) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach ${this.config.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 'UNREACHABLE', 0);
    }
    if (!res.ok) {
      const text = await res.text();
      let body: Partial<ErrorBody> = {};
      try {
        body = JSON.parse(text) as Partial<ErrorBody>;
      } catch {
        /* not JSON: keep the text */
      }
      throw new ApiError(body.error ?? (text || res.statusText), body.code ?? `HTTP_${res.status}`, res.status);
    }
    return res;
  }

  async json<T>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, p, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return (await res.json()) as T;
  }

  get<T>(p: string): Promise<T> {
    return this.json<T>('GET', p);
  }
}

export const enc = encodeURIComponent;
