/**
 * Assertions shared by the in-process suites: the v1 error shape with its code and status (both
 * from the error table and as the literal number the test expects, so a change of the table is
 * caught), response shapes checked against the contract's schemas, and the set of error codes seen.
 */
import { ErrorBody, ErrorCodes, type ErrorCode } from '@qemu-manager/contract';
import { FormatRegistry, Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { expect } from 'vitest';
import { ERROR_STATUS } from '../../packages/server/src/http/error-table.js';
import type { Reply } from './app.js';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)));

/** Statuses each route answered with (`METHOD /api/route/:param` → statuses), for the route coverage test. */
export const routeHits = new Map<string, Set<number>>();

export function recordHit(method: string, url: string, status: number): void {
  const key = `${method} ${url}`;
  const set = routeHits.get(key) ?? new Set<number>();
  set.add(status);
  routeHits.set(key, set);
}

/** Every error code an in-process request produced (for the final coverage test). */
export const seenCodes = new Set<ErrorCode>();

/**
 * The reply is the error `code` with `status` (which must also be the table's status for it), in
 * the v1 shape `{ error, timestamp, code }` and nothing else, and its message matches `message`.
 */
export function expectError(res: Reply, code: ErrorCode, status: number, message: string | RegExp): void {
  expect(ERROR_STATUS[code], `the error table's status for ${code}`).toBe(status);
  expect({ status: res.status, code: (res.body as { code?: unknown } | null)?.code }).toEqual({ status, code });
  expect(Object.keys(res.body as object).sort()).toEqual(['code', 'error', 'timestamp']);
  // ErrorBody's `code` is an enum TypeBox cannot check itself (Unsafe): the rest is checked by schema.
  expectShape(Type.Omit(ErrorBody, ['code']), { ...(res.body as object), code: undefined });
  expect(ErrorCodes).toContain(code);
  const body = res.body as ErrorBody;
  expect(Math.abs(Date.parse(body.timestamp) - Date.now())).toBeLessThan(60_000);
  if (typeof message === 'string') expect(body.error).toBe(message);
  else expect(body.error).toMatch(message);
  seenCodes.add(code);
}

/** The body matches the contract schema (its errors listed when it does not). */
export function expectShape(schema: TSchema, body: unknown): void {
  const errors = [...Value.Errors(schema, body)].map((e) => `${e.path}: ${e.message}`);
  expect(errors, JSON.stringify(body)).toEqual([]);
}
