import { describe, expect, it } from 'vitest';
import { hashPassword, secretHash, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('hashes with a random salt and verifies only the right password', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horsf', a)).toBe(false);
    expect(await verifyPassword('correct horse', 'plain$text')).toBe(false);
  });
  it('hashes secrets deterministically', () => {
    expect(secretHash('abc')).toBe(secretHash('abc'));
    expect(secretHash('abc')).not.toBe(secretHash('abd'));
  });
});
