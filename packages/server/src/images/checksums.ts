/**
 * Checksum lists as distributions publish them (SHA256SUMS, SHA512SUMS, Fedora's CHECKSUM, a
 * single `<file>.sha512`): GNU `<hex>  <file>` / `<hex> *<file>` lines and BSD
 * `SHA256 (<file>) = <hex>` lines, anything else (comments, a PGP armour) ignored. The algorithm
 * follows from the length of the hex digest (64: sha256, 128: sha512).
 */

export type ChecksumAlgorithm = 'sha256' | 'sha512';
export interface Checksum {
  algorithm: ChecksumAlgorithm;
  hex: string;
}

/** The largest checksum list fetched (bytes): real ones are a few KiB. */
export const MAX_CHECKSUM_LIST_BYTES = 1024 * 1024;

const GNU = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128}) [ *]?(.+)$/;
const BSD = /^(SHA256|SHA512) ?\((.+)\) ?= ?([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/i;

function algorithmOf(hex: string): ChecksumAlgorithm {
  return hex.length === 64 ? 'sha256' : 'sha512';
}

/** Every (file name, checksum) pair of a list, in order. */
export function parseChecksumList(text: string): Array<{ file: string; sum: Checksum }> {
  const out: Array<{ file: string; sum: Checksum }> = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const bsd = BSD.exec(line);
    if (bsd) {
      const hex = bsd[3]!.toLowerCase();
      // The label must agree with the digest's length (SHA256 with 128 hex digits is not a sha256).
      if (bsd[1]!.toLowerCase() !== algorithmOf(hex)) continue;
      out.push({ file: bsd[2]!, sum: { algorithm: algorithmOf(hex), hex } });
      continue;
    }
    const gnu = GNU.exec(line);
    if (gnu) {
      const hex = gnu[1]!.toLowerCase();
      out.push({ file: gnu[2]!, sum: { algorithm: algorithmOf(hex), hex } });
    }
  }
  return out;
}

/** The file name a URL downloads (its last path segment, decoded). */
export function urlFileName(url: URL): string {
  const last = url.pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * The checksum the list gives for `file` (compared with and without a leading `./`). sha512 is
 * preferred when both are listed. Throws (words for a failed task) when the file is not listed or
 * listed twice with different digests of one algorithm.
 */
export function lookupChecksum(text: string, file: string): Checksum {
  const strip = (f: string) => f.replace(/^\.\//, '');
  const found = parseChecksumList(text).filter((e) => strip(e.file) === strip(file));
  if (found.length === 0) throw new Error(`The checksum list does not name ${file}`);
  for (const algorithm of ['sha512', 'sha256'] as const) {
    const of = found.filter((e) => e.sum.algorithm === algorithm);
    if (of.length === 0) continue;
    if (of.some((e) => e.sum.hex !== of[0]!.sum.hex)) throw new Error(`The checksum list gives ${file} two different ${algorithm} digests`);
    return of[0]!.sum;
  }
  throw new Error(`The checksum list does not name ${file}`);
}
