import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { hashPassword, isSha512CryptHash, sha512Crypt } from './sha512-crypt.js';

// The test vectors of the specification ("Unix crypt using SHA-256 and SHA-512", SHA-512 part).
const VECTORS: Array<[setting: string, password: string, expected: string]> = [
  ['$6$saltstring', 'Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
  [
    '$6$rounds=10000$saltstringsaltstring',
    'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    '$6$rounds=5000$toolongsaltstring',
    'This is just a test',
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    '$6$rounds=1400$anotherlongsaltstring',
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    '$6$rounds=77777$short',
    'we have a short salt string but not a short password',
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    '$6$rounds=123456$asaltof16chars..',
    'a short string',
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    '$6$rounds=10$roundstoolow',
    'the minimum number is still observed',
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];

describe('sha512Crypt', () => {
  it.each(VECTORS)('%s gives the specification vector', (setting, password, expected) => {
    expect(sha512Crypt(password, setting)).toBe(expected);
  });

  it('reads a full hash as its own setting (verification)', () => {
    const [, password, expected] = VECTORS[0];
    expect(sha512Crypt(password, expected)).toBe(expected);
    expect(sha512Crypt('Hello world?', expected)).not.toBe(expected);
  });

  it('hashPassword: a new 16-character salt each time, the stored shape', () => {
    const a = hashPassword('correct horse');
    const b = hashPassword('correct horse');
    expect(a).not.toBe(b);
    expect(isSha512CryptHash(a)).toBe(true);
    expect(sha512Crypt('correct horse', a)).toBe(a);
    expect(isSha512CryptHash('$6$short$abc')).toBe(false);
  });

  it('agrees with openssl passwd -6 on multi-byte and long passwords', () => {
    const probe = spawnSync('openssl', ['version']);
    if (probe.status !== 0) return; // openssl is a test dependency (scripts/system-deps.mjs)
    for (const pw of ['pässwörd ✓', 'x'.repeat(200), 'a']) {
      const mine = hashPassword(pw);
      const salt = mine.split('$')[2];
      const theirs = spawnSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: pw, encoding: 'utf8' });
      expect(theirs.stdout.trim()).toBe(mine);
    }
  });
});
