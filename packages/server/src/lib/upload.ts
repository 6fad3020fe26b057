import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from './errors.js';

/**
 * Streams a request body into `tmp` (created new, owner-only unless `mode` says otherwise): at most
 * `maxBytes` (413 PAYLOAD_TOO_LARGE, also when only the declared length says so), aborted after
 * `idleMs` without a byte (408 REQUEST_TIMEOUT), and exactly the declared length when one was given.
 * On any failure `tmp` is removed and an AppError says why. `what` names the upload in messages.
 */
export async function receiveUpload(
  body: Readable,
  tmp: string,
  opts: { maxBytes: number; idleMs: number; declaredLength: number | null; what: string; mode?: number },
): Promise<number> {
  const { maxBytes: max, idleMs, declaredLength, what } = opts;
  const tooLarge = () => new AppError('PAYLOAD_TOO_LARGE', `The ${what} is larger than the limit of ${max} bytes`);
  if (declaredLength !== null && declaredLength > max) throw tooLarge();
  let received = 0;
  // No byte for idleMs: the upload is aborted (the client's connection with it) and the temp file removed.
  const stall = () => limiter.destroy(new AppError('REQUEST_TIMEOUT', `The upload sent nothing for ${Math.round(idleMs / 1000)} s and was aborted`));
  const limiter: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      idle.refresh();
      received += chunk.length;
      if (received > max) cb(tooLarge());
      else cb(null, chunk);
    },
  });
  const idle = setTimeout(stall, idleMs);
  try {
    await pipeline(body, limiter, fs.createWriteStream(tmp, { flags: 'wx', mode: opts.mode ?? 0o600 }));
    if (declaredLength !== null && received !== declaredLength) {
      throw new AppError('BAD_REQUEST', `Upload ended after ${received} of ${declaredLength} bytes`);
    }
    return received;
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err instanceof AppError ? err : new AppError('BAD_REQUEST', 'The upload was interrupted', { cause: err });
  } finally {
    clearTimeout(idle);
  }
}
