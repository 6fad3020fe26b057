import { ErrorCodes, type ErrorCode } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, codeForStatus, errorBody, rawErrorResponse } from './error-table.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../README.md');

describe('the error table', () => {
  it('gives every code of the contract one status', () => {
    expect(Object.keys(ERROR_STATUS).sort()).toEqual([...ErrorCodes].sort());
    for (const code of ErrorCodes) expect(ERROR_STATUS[code]).toBeGreaterThanOrEqual(400);
  });

  it('is what the README documents', () => {
    const text = fs.readFileSync(README, 'utf8');
    const section = text.slice(text.indexOf('### Error codes'), text.indexOf('### Decisions where the spec is silent'));
    const documented: Partial<Record<ErrorCode, number>> = {};
    for (const row of section.matchAll(/^\| (\d{3}) \| (.+) \|$/gm)) {
      for (const m of row[2].matchAll(/`([A-Z_]+)`/g)) documented[m[1] as ErrorCode] = Number(row[1]);
    }
    expect(documented).toEqual(ERROR_STATUS);
  });

  it('writes the v1 body with the code, also as a raw response for sockets', () => {
    const body = errorBody('VM_NOT_FOUND', 'VM not found: x');
    expect(body).toMatchObject({ error: 'VM not found: x', code: 'VM_NOT_FOUND' });
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    const raw = rawErrorResponse('UNAUTHORIZED', 'no');
    expect(raw).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    const json = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    expect(Number(/Content-Length: (\d+)/.exec(raw)?.[1])).toBe(Buffer.byteLength(json));
    expect(JSON.parse(json)).toMatchObject({ error: 'no', code: 'UNAUTHORIZED' });
  });

  it('names Fastify client errors by their status', () => {
    expect(codeForStatus(415)).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(codeForStatus(413)).toBe('PAYLOAD_TOO_LARGE');
    expect(codeForStatus(400)).toBe('BAD_REQUEST');
    expect(codeForStatus(418)).toBe('BAD_REQUEST');
  });
});
