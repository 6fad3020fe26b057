import { describe, expect, it } from 'vitest';
import { hostName, parseCookies } from './guard.js';

describe('hostName', () => {
  it('strips the port, brackets and case', () => {
    expect(hostName('LocalHost:5000')).toBe('localhost');
    expect(hostName('127.0.0.1')).toBe('127.0.0.1');
    expect(hostName('[::1]:5000')).toBe('::1');
    expect(hostName('evil.example:80')).toBe('evil.example');
    expect(hostName(undefined)).toBeNull();
  });
});

describe('parseCookies', () => {
  it('reads name=value pairs', () => {
    expect(parseCookies('a=1; qm_session=abc%3D; b')).toEqual({ a: '1', qm_session: 'abc=' });
    expect(parseCookies(undefined)).toEqual({});
  });
});
