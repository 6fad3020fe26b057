import type { ErrorCode } from '@qemu-manager/contract';

/**
 * A domain error: a stable code and a message safe to show. Which HTTP status a code answers with
 * is decided in one place, the error table in http/error-table.ts; no layer below http/ knows it.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
