// The one place that talks HTTP and turns error bodies into ApiError.
import { errorWords, getLanguage, t } from '../i18n';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    /** The server's stable error code (e.g. VM_NOT_STOPPED), 'NETWORK', or undefined. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Build an ApiError from a status and the raw response text (JSON `{error, code}` or anything else). */
export function toApiError(status: number, bodyText: string): ApiError {
  let message: string | undefined;
  let code: string | undefined;
  try {
    const body: unknown = JSON.parse(bodyText);
    if (body && typeof body === 'object') {
      const b = body as { error?: unknown; message?: unknown; code?: unknown };
      if (typeof b.error === 'string' && b.error.trim()) message = b.error;
      else if (typeof b.message === 'string' && b.message.trim()) message = b.message;
      if (typeof b.code === 'string') code = b.code;
    }
  } catch {
    // Not JSON (a proxy error page, an empty body): fall through to a generic message.
  }
  if (!message) message = status === 413 ? t.errors.tooLarge : t.errors.http(status);
  if (!code && status === 413) code = 'PAYLOAD_TOO_LARGE';
  return new ApiError(status, code, message);
}

/** Words for any thrown value, for showing next to whatever caused it. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return getLanguage() === 'en' ? err.message : errorWords(err.code, err.message);
  if (err instanceof Error && err.message) return err.message;
  if (typeof err === 'string' && err) return err;
  return t.errors.unexpected;
}

export const API_BASE = '/api';

export async function request<T>(
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  init?: { signal?: AbortSignal },
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: init?.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', t.errors.network);
  }
  const text = await res.text();
  if (!res.ok) throw toApiError(res.status, text);
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'BAD_RESPONSE', t.errors.unexpected);
  }
}
