import crypto from 'node:crypto';

/**
 * SHA-512 crypt (`$6$`), as specified by Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"
 * and read by glibc's crypt(3), shadow and cloud-init's `passwd`/`chpasswd`. Built on node:crypto.
 */

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;

function sha512(...parts: Buffer[]): Buffer {
  const h = crypto.createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `length` bytes of `digest` repeated (the spec's P and S sequences, and the tails of step 2). */
function repeatTo(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += digest.length) digest.copy(out, i, 0, Math.min(digest.length, length - i));
  return out;
}

/** The spec's byte order for the final base-64 text of a SHA-512 digest. */
function encode(d: Buffer): string {
  let out = '';
  const put = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += ALPHABET[w & 0x3f];
      w >>= 6;
    }
  };
  for (let i = 0; i < 21; i++) {
    const t = [d[i]!, d[i + 21]!, d[i + 42]!];
    // The triple (i, i+21, i+42) is rotated by i mod 3.
    const r = i % 3;
    const [a, b, c] = r === 0 ? t : r === 1 ? [t[1]!, t[2]!, t[0]!] : [t[2]!, t[0]!, t[1]!];
    put(a!, b!, c!, 4);
  }
  put(0, 0, d[63]!, 2);
  return out;
}

/**
 * The crypt text of `password` for `setting`: `$6$<salt>` or `$6$rounds=<n>$<salt>` (a salt beyond
 * 16 characters is cut, rounds are clamped to 1000..999999999, as the spec says).
 */
export function sha512Crypt(password: string, setting: string): string {
  const m = /^\$6\$(?:rounds=(\d+)\$)?([^$]*)(?:\$.*)?$/.exec(setting);
  if (!m) throw new Error('not a $6$ setting');
  const custom = m[1] !== undefined;
  const rounds = custom ? Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(m[1]))) : ROUNDS_DEFAULT;
  const salt = Buffer.from(m[2]!, 'utf8').subarray(0, SALT_MAX);
  const p = Buffer.from(password, 'utf8');

  const b = sha512(p, salt, p);
  const a = crypto.createHash('sha512');
  a.update(p);
  a.update(salt);
  a.update(repeatTo(b, p.length));
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  let c = a.digest();

  const pSeq = repeatTo(sha512(...Array.from({ length: p.length }, () => p)), p.length);
  const sSeq = repeatTo(sha512(...Array.from({ length: 16 + c[0]! }, () => salt)), salt.length);
  for (let i = 0; i < rounds; i++) {
    const h = crypto.createHash('sha512');
    h.update(i & 1 ? pSeq : c);
    if (i % 3 !== 0) h.update(sSeq);
    if (i % 7 !== 0) h.update(pSeq);
    h.update(i & 1 ? c : pSeq);
    c = h.digest();
  }
  return `$6$${custom ? `rounds=${rounds}$` : ''}${salt.toString('utf8')}$${encode(c)}`;
}

/** A new `$6$<16-character random salt>$…` hash of `password` (default 5000 rounds). */
export function hashPassword(password: string): string {
  const bytes = crypto.randomBytes(SALT_MAX);
  let salt = '';
  for (const byte of bytes) salt += ALPHABET[byte & 0x3f];
  return sha512Crypt(password, `$6$${salt}`);
}

/** Whether `text` has the shape of a SHA-512 crypt hash with a 16-character salt (what we store). */
export function isSha512CryptHash(text: string): boolean {
  return /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/.test(text);
}
