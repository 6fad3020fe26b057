// Checks on a file before it is uploaded as an ISO.

/** ISO 9660: the first volume descriptor sits at 32 KiB: a type byte, then "CD001". */
export const ISO9660_OFFSET = 32768;
const MAGIC = [0x43, 0x44, 0x30, 0x30, 0x31]; // "CD001"

/** True when `bytes` (read from offset 32768 of the file) carry the ISO 9660 signature. */
export function hasIso9660Signature(bytes: Uint8Array): boolean {
  if (bytes.length < 6) return false;
  return MAGIC.every((b, i) => bytes[i + 1] === b);
}

/** Reads the 6 signature bytes of a file. */
export async function looksLikeIso(file: Blob): Promise<boolean> {
  if (file.size < ISO9660_OFFSET + 6) return false;
  const buf = await file.slice(ISO9660_OFFSET, ISO9660_OFFSET + 6).arrayBuffer();
  return hasIso9660Signature(new Uint8Array(buf));
}
