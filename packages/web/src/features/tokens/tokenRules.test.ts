import { describe, expect, it } from 'vitest';
import type { ApiToken } from '@qemu-manager/contract';
import { createTokenBody, curlExample, EXPIRY_CHOICES, expiresInSeconds, sortTokens, tokenState } from './tokenRules';

const now = Date.parse('2025-11-28T12:00:00.000Z');
const token = (over: Partial<ApiToken> = {}): ApiToken => ({
  id: '33333333-3333-4333-8333-333333333333',
  name: 'backup',
  scope: 'read',
  createdAt: '2025-11-01T00:00:00.000Z',
  expiresAt: null,
  lastUsedAt: null,
  revokedAt: null,
  ...over,
});

describe('tokenState', () => {
  it('is active without expiry or before it', () => {
    expect(tokenState(token(), now)).toBe('active');
    expect(tokenState(token({ expiresAt: '2025-11-28T12:00:01.000Z' }), now)).toBe('active');
  });
  it('is expired at and after the expiry time', () => {
    expect(tokenState(token({ expiresAt: '2025-11-28T12:00:00.000Z' }), now)).toBe('expired');
    expect(tokenState(token({ expiresAt: '2025-11-01T00:00:00.000Z' }), now)).toBe('expired');
  });
  it('is revoked when revoked, even if it has also expired', () => {
    expect(tokenState(token({ revokedAt: '2025-11-20T00:00:00.000Z' }), now)).toBe('revoked');
    expect(tokenState(token({ revokedAt: '2025-11-20T00:00:00.000Z', expiresAt: '2025-11-21T00:00:00.000Z' }), now)).toBe('revoked');
  });
  it('ignores an unreadable expiry rather than calling the token expired', () => {
    expect(tokenState(token({ expiresAt: 'garbage' }), now)).toBe('active');
  });
});

describe('expiry choices', () => {
  it('turns each choice into seconds', () => {
    expect(expiresInSeconds('never')).toBeUndefined();
    expect(expiresInSeconds('1d')).toBe(86_400);
    expect(expiresInSeconds('30d')).toBe(30 * 86_400);
    expect(expiresInSeconds('90d')).toBe(90 * 86_400);
    expect(expiresInSeconds('1y')).toBe(365 * 86_400);
  });
  it('never goes below the server minimum of 60 s or above its 10-year maximum', () => {
    const seconds = EXPIRY_CHOICES.map(expiresInSeconds).filter((s) => s !== undefined);
    expect(seconds).toHaveLength(EXPIRY_CHOICES.length - 1);
    for (const s of seconds) {
      expect(s).toBeGreaterThanOrEqual(60);
      expect(s).toBeLessThanOrEqual(10 * 365 * 86_400);
    }
  });
  it('builds the request body, leaving expiresIn out for "never"', () => {
    expect(createTokenBody(' ci deploy ', 'admin', 'never')).toEqual({ name: 'ci deploy', scope: 'admin' });
    expect(createTokenBody('ci', 'read', '1d')).toEqual({ name: 'ci', scope: 'read', expiresIn: 86_400 });
  });
});

describe('token list', () => {
  it('puts active tokens first, newest first, revoked last', () => {
    const list = [
      token({ id: 'old', createdAt: '2025-10-01T00:00:00.000Z' }),
      token({ id: 'revoked', createdAt: '2025-11-27T00:00:00.000Z', revokedAt: '2025-11-27T01:00:00.000Z' }),
      token({ id: 'new', createdAt: '2025-11-20T00:00:00.000Z' }),
      token({ id: 'expired', createdAt: '2025-11-25T00:00:00.000Z', expiresAt: '2025-11-26T00:00:00.000Z' }),
    ];
    expect(sortTokens(list, now).map((x) => x.id)).toEqual(['new', 'old', 'expired', 'revoked']);
  });
  it('shows how to use a token with curl', () => {
    expect(curlExample('http://10.0.0.5:5000', 'qm_abc')).toBe('curl -H "Authorization: Bearer qm_abc" http://10.0.0.5:5000/api/vms');
  });
});
