import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, errorMessage, request, toApiError } from './client';

describe('toApiError', () => {
  it('reads the v1 error body with its code', () => {
    const e = toApiError(409, JSON.stringify({ error: 'VM must be stopped', timestamp: 'x', code: 'VM_NOT_STOPPED' }));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(409);
    expect(e.code).toBe('VM_NOT_STOPPED');
    expect(e.message).toBe('VM must be stopped');
  });
  it('falls back to words when the body is not JSON', () => {
    const e = toApiError(502, '<html>Bad gateway</html>');
    expect(e.message).toMatch(/HTTP 502/);
    expect(e.code).toBeUndefined();
  });
  it('explains 413 even without a body', () => {
    const e = toApiError(413, '');
    expect(e.code).toBe('PAYLOAD_TOO_LARGE');
    expect(e.message).toMatch(/larger/);
  });
  it('accepts {message} bodies', () => {
    expect(toApiError(400, '{"message":"bad"}').message).toBe('bad');
  });
});

describe('errorMessage', () => {
  it('gives words for anything', () => {
    expect(errorMessage(new ApiError(404, 'VM_NOT_FOUND', 'VM not found'))).toBe('VM not found');
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('text')).toBe('text');
    expect(errorMessage(undefined)).toMatch(/wrong/);
  });
});

describe('request', () => {
  afterEach(() => vi.unstubAllGlobals());
  it('sends JSON and parses JSON', async () => {
    const fetchMock = vi.fn(async () => new Response('{"vms":[]}', { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await expect(request('POST', '/vms', { name: 'a' })).resolves.toEqual({ vms: [] });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/vms');
    expect(init.body).toBe('{"name":"a"}');
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });
  it('throws ApiError on error status', async () => {
    vi.stubGlobal('fetch', async () => new Response('{"error":"nope","code":"NAME_TAKEN"}', { status: 409 }));
    await expect(request('POST', '/vms', {})).rejects.toMatchObject({ status: 409, code: 'NAME_TAKEN', message: 'nope' });
  });
  it('turns a network failure into a NETWORK ApiError', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(request('GET', '/vms')).rejects.toMatchObject({ status: 0, code: 'NETWORK' });
  });
});
