import { describe, expect, it } from 'vitest';
import { hasIso9660Signature, ISO9660_OFFSET, looksLikeIso } from './isoFile';

function isoBytes(): Uint8Array {
  const b = new Uint8Array(ISO9660_OFFSET + 2048);
  b.set([0x01, ...'CD001'.split('').map((c) => c.charCodeAt(0)), 0x01], ISO9660_OFFSET);
  return b;
}

describe('ISO checks', () => {
  it('recognises the ISO 9660 signature', () => {
    expect(hasIso9660Signature(new Uint8Array([1, 0x43, 0x44, 0x30, 0x30, 0x31]))).toBe(true);
    expect(hasIso9660Signature(new Uint8Array([1, 0x43, 0x44, 0x30, 0x30]))).toBe(false);
    expect(hasIso9660Signature(new Uint8Array(6))).toBe(false);
  });
  it('reads it from a Blob', async () => {
    await expect(looksLikeIso(new Blob([isoBytes() as BlobPart]))).resolves.toBe(true);
    await expect(looksLikeIso(new Blob([new Uint8Array(40000) as BlobPart]))).resolves.toBe(false);
    await expect(looksLikeIso(new Blob(['tiny']))).resolves.toBe(false);
  });
});
