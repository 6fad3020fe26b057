import type { ErrorCode } from '@qemu-manager/contract';

/** A domain error: a stable code, the HTTP status it maps to, and a message safe to show. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  constructor(statusCode: number, code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

export const notFound = (message: string, code: ErrorCode = 'NOT_FOUND') => new AppError(404, code, message);

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
