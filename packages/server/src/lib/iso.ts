import fs from 'node:fs';

/** Volume descriptors start at sector 16 (byte 32768) of 2048-byte sectors; a few are looked at. */
const FIRST_DESCRIPTOR = 16;
const LAST_DESCRIPTOR = 31;
const SECTOR = 2048;
/** ISO 9660 primary/supplementary ("CD001") and UDF's volume recognition sequence (BEA01, NSR02/03). */
const IDENTIFIERS = new Set(['CD001', 'BEA01', 'NSR02', 'NSR03']);

/**
 * True if the open file holds an ISO 9660 or UDF volume: one of the standard identifiers at byte 1
 * of a volume descriptor from sector 16 on. Reads the descriptor given, never a path, so the answer
 * is about the file the caller holds.
 */
export function looksLikeIso(fd: number): boolean {
  const buf = Buffer.alloc(5);
  for (let sector = FIRST_DESCRIPTOR; sector <= LAST_DESCRIPTOR; sector++) {
    if (fs.readSync(fd, buf, 0, 5, sector * SECTOR + 1) < 5) return false;
    if (IDENTIFIERS.has(buf.toString('latin1'))) return true;
  }
  return false;
}
