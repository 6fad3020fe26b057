import fs from 'node:fs';
import type { ImageFormat } from '../lib/image-check.js';

/**
 * The virtual size of an image, read by the server from the descriptor it checked (no qemu-img):
 * qcow2: the 64-bit big-endian `size` at offset 24 of the header; vmdk (a checked, self-contained
 * sparse vmdk): the capacity in 512-byte sectors at offset 12 (little-endian); raw: the file size.
 * Returns null when the header cannot say (a short read, a size that is no safe integer).
 */
export function virtualSize(fd: number, format: ImageFormat): number | null {
  if (format === 'raw') return fs.fstatSync(fd).size;
  const buf = Buffer.alloc(32);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  let size: bigint;
  if (format === 'qcow2') {
    if (n < 32 || buf.readUInt32BE(0) !== 0x514649fb) return null;
    size = buf.readBigUInt64BE(24);
  } else {
    if (n < 20 || buf.readUInt32BE(0) !== 0x4b444d56) return null;
    size = buf.readBigUInt64LE(12) * 512n;
  }
  return size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : null;
}
