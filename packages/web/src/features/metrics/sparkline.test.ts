import { describe, expect, it } from 'vitest';
import { seriesPath, sparklinePath } from './sparkline';

describe('sparklinePath (issue 14)', () => {
  it('draws 0..100 % bottom to top, breaks at gaps, scales up for more than one core', () => {
    expect(sparklinePath([0, 50, 100], 20, 10)).toBe('M0 10L10 5L20 0');
    expect(sparklinePath([10, null, 10], 20, 10)).toBe('M0 9M20 9');
    expect(sparklinePath([200, 100], 10, 10)).toBe('M0 0L10 5');
    expect(sparklinePath([], 10, 10)).toBe('');
    expect(sparklinePath([null, null], 10, 10)).toBe('');
    expect(seriesPath([0, 2048, 4096], 20, 10)).toBe('M0 10L10 5L20 0');
    expect(seriesPath([0, 0], 10, 10)).toBe('M0 10L10 10');
  });
});
