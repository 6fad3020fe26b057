import { describe, expect, it } from 'vitest';
import { lookupChecksum, parseChecksumList, urlFileName } from './checksums.js';

const h256 = 'a'.repeat(64);
const h512 = 'b'.repeat(128);

describe('checksum lists', () => {
  it('reads GNU lines (text and binary mode) and BSD lines, ignoring comments and armour', () => {
    const text = [
      '-----BEGIN PGP SIGNED MESSAGE-----',
      'Hash: SHA256',
      '',
      '# Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2: 123 bytes',
      `SHA256 (Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2) = ${h256.toUpperCase()}`,
      `${h512}  debian-12-genericcloud-amd64.qcow2`,
      `${h256} *noble-server-cloudimg-amd64.img`,
      `SHA512 (x.qcow2) = ${h256}`, // label and length disagree: not an entry
      'garbage line',
      '-----BEGIN PGP SIGNATURE-----',
    ].join('\r\n');
    expect(parseChecksumList(text)).toEqual([
      { file: 'Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2', sum: { algorithm: 'sha256', hex: h256 } },
      { file: 'debian-12-genericcloud-amd64.qcow2', sum: { algorithm: 'sha512', hex: h512 } },
      { file: 'noble-server-cloudimg-amd64.img', sum: { algorithm: 'sha256', hex: h256 } },
    ]);
  });

  it('looks a file up by name (with or without ./), sha512 first; unlisted or conflicting is an error', () => {
    const text = `${h256}  ./a.qcow2\n${h512}  a.qcow2\n${h256}  b.img\n${'c'.repeat(64)}  b.img\n`;
    expect(lookupChecksum(text, 'a.qcow2')).toEqual({ algorithm: 'sha512', hex: h512 });
    expect(() => lookupChecksum(text, 'b.img')).toThrow('The checksum list gives b.img two different sha256 digests');
    expect(() => lookupChecksum(text, 'c.img')).toThrow('The checksum list does not name c.img');
    // A name is compared whole: a suffix of another name does not match.
    expect(() => lookupChecksum(`${h256}  xa.qcow2\n`, 'a.qcow2')).toThrow('does not name a.qcow2');
  });

  it('the file name of a URL is its last path segment, decoded, without the query', () => {
    expect(urlFileName(new URL('https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2?x=1'))).toBe('debian-12-genericcloud-amd64.qcow2');
    expect(urlFileName(new URL('http://127.0.0.1:8080/a%20b.img'))).toBe('a b.img');
  });
});
