import { describe, expect, it } from 'vitest';
import { ByteRing, lastLines } from './byte-ring.js';

describe('ByteRing', () => {
  it('keeps everything until full, then only the last capacity bytes, oldest first', () => {
    const r = new ByteRing(8);
    r.write(Buffer.from('abc'));
    expect(r.snapshot().toString()).toBe('abc');
    r.write(Buffer.from('defgh'));
    expect(r.snapshot().toString()).toBe('abcdefgh');
    r.write(Buffer.from('ij'));
    expect(r.snapshot().toString()).toBe('cdefghij');
    r.write(Buffer.from('klmnopqrstuvwxyz0123'));
    expect(r.snapshot().toString()).toBe('vwxyz0123'.slice(1));
    expect(r.size).toBe(8);
  });

  it('never holds more than its capacity whatever is written', () => {
    const r = new ByteRing(64 * 1024);
    let all = '';
    for (let i = 0; i < 5000; i++) {
      const chunk = `line ${i} ${'x'.repeat(i % 97)}\n`;
      all += chunk;
      r.write(Buffer.from(chunk));
    }
    expect(r.size).toBe(64 * 1024);
    expect(r.snapshot().toString()).toBe(all.slice(-64 * 1024));
  });
});

describe('lastLines', () => {
  it('gives the last n lines', () => {
    expect(lastLines('a\nb\nc\n', 2)).toBe('b\nc\n');
    expect(lastLines('a\nb\nc', 2)).toBe('b\nc');
    expect(lastLines('a\nb\nc\n', 10)).toBe('a\nb\nc\n');
    expect(lastLines('', 3)).toBe('');
    expect(lastLines('a\nb', 0)).toBe('');
  });
});
