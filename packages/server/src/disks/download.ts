import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const MAX_REDIRECTS = 5;
const PROGRESS_EVERY_MS = 200;

export interface DownloadOptions {
  signal: AbortSignal;
  /** More than this many bytes (announced or received) fails the download with `tooLarge`. */
  maxBytes: number;
  /** No byte for this long (before the answer or within the body): the connection is dropped. */
  idleMs: number;
  /** Bytes received and the announced length (null while unknown), at most 5 a second and at the end. */
  progress?: (done: number, total: number | null) => void;
  /** Hashes computed over the bytes as they arrive (default: sha256). */
  algorithms?: readonly string[];
  /** The message when the limit is passed (default: names MAX_UPLOAD_MB). */
  tooLarge?: string;
}

export interface Downloaded {
  bytes: number;
  /** Hex digest per algorithm asked for. */
  hashes: Record<string, string>;
  /** The body itself when it was fetched into memory (`out` null). */
  body: Buffer | null;
}

/** Whether `text` is an absolute http:// or https:// URL; throws the words of the refusal otherwise. */
export function httpUrl(text: string, field = 'url'): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${field} must be an absolute http:// or https:// URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${field} must be http:// or https://, not ${url.protocol}`);
  return url;
}

/**
 * Downloads `start` (http or https, following at most 5 redirects, each to http(s)) into the new
 * file `out` (created O_EXCL, owner-only) or, with `out` null, into memory; at most maxBytes,
 * aborted after idleMs without a byte or by `signal`. Every failure is an Error whose message
 * names the host, never the file. Shared by disk imports and the image library.
 */
export async function download(start: URL, out: string | null, opts: DownloadOptions): Promise<Downloaded> {
  const { maxBytes, idleMs, signal } = opts;
  const algorithms = opts.algorithms ?? ['sha256'];
  let url = start;
  for (let hop = 0; ; hop++) {
    const { req, res } = await get(url, signal, idleMs);
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status)) {
      res.resume();
      req.destroy();
      if (hop >= MAX_REDIRECTS) throw new Error(`The download was redirected more than ${MAX_REDIRECTS} times`);
      const location = res.headers.location;
      if (!location) throw new Error(`${url.host} answered ${status} without a Location`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new Error(`${url.host} redirected to an invalid URL`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error(`${url.host} redirected to a ${next.protocol} URL; only http(s) is followed`);
      url = next;
      continue;
    }
    if (status < 200 || status > 299) {
      res.resume();
      req.destroy();
      throw new Error(`${url.host} answered ${status} ${res.statusMessage ?? ''}`.trim());
    }
    const header = res.headers['content-length'];
    const length = header !== undefined && /^\d+$/.test(header) ? Number(header) : null;
    const tooLarge = () => new Error(opts.tooLarge ?? `The download is larger than the limit of ${maxBytes} bytes (MAX_UPLOAD_MB)`);
    if (length !== null && length > maxBytes) {
      req.destroy();
      throw tooLarge();
    }
    opts.progress?.(0, length);
    const hashes = algorithms.map((a) => crypto.createHash(a));
    let received = 0;
    let reported = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        if (received > maxBytes) return cb(tooLarge());
        for (const h of hashes) h.update(chunk);
        if (opts.progress && Date.now() - reported >= PROGRESS_EVERY_MS) {
          reported = Date.now();
          opts.progress(received, length);
        }
        cb(null, chunk);
      },
    });
    const chunks: Buffer[] = [];
    const sink =
      out === null
        ? new Writable({
            write(chunk: Buffer, _enc, cb) {
              chunks.push(chunk);
              cb();
            },
          })
        : fs.createWriteStream(out, { flags: 'wx', mode: 0o600 });
    try {
      await pipeline(res, counter, sink, { signal });
    } catch (err) {
      req.destroy();
      if (signal.aborted) throw new Error('cancelled');
      if (req.stalled) throw new Error(`The download sent nothing for ${Math.round(idleMs / 1000)} s and was aborted`);
      throw err instanceof Error && err.message === tooLarge().message
        ? err
        : err instanceof Error && err.message.startsWith('The download')
          ? err
          : new Error(`The download from ${url.host} was interrupted after ${received} bytes`);
    }
    if (length !== null && received !== length) throw new Error(`The download ended after ${received} of ${length} bytes`);
    opts.progress?.(received, length ?? received);
    return {
      bytes: received,
      hashes: Object.fromEntries(algorithms.map((a, i) => [a, hashes[i]!.digest('hex')])),
      body: out === null ? Buffer.concat(chunks) : null,
    };
  }
}

/** A GET of `url`, resolved with the response (its body not read yet). */
function get(url: URL, signal: AbortSignal, idleMs: number): Promise<{ req: http.ClientRequest & { stalled?: boolean }; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req: http.ClientRequest & { stalled?: boolean } = mod.get(url, { signal, headers: { 'user-agent': 'qemu-manager-import', accept: '*/*' } });
    // No byte for idleMs (before the answer, or within the body): the connection is dropped.
    req.setTimeout(idleMs, () => {
      req.stalled = true;
      req.destroy(new Error(`${url.host} sent nothing for ${Math.round(idleMs / 1000)} s`));
    });
    req.once('response', (res) => resolve({ req, res }));
    // Every error is handled (one after the answer came is the body pipeline's to report).
    req.on('error', (err) => reject(signal.aborted ? new Error('cancelled') : new Error(`The download from ${url.host} failed: ${err.message}`)));
  });
}
