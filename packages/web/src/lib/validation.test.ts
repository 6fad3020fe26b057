import { describe, expect, it } from 'vitest';
import { defaultDiskName, inRange, isValidDiskName, isValidIsoName, isValidTokenName, isValidVmName, parseIntStrict, suggestIsoName } from './validation';

describe('names', () => {
  it('accepts what the server accepts', () => {
    expect(isValidVmName('e2e-guest')).toBe(true);
    expect(isValidVmName('a.b_c-1')).toBe(true);
    expect(isValidVmName('-bad')).toBe(false);
    expect(isValidVmName('has space')).toBe(false);
    expect(isValidVmName('x'.repeat(64))).toBe(false);
    expect(isValidDiskName('disk0')).toBe(true);
    expect(isValidDiskName('../etc')).toBe(false);
  });
  it('checks token names (spaces allowed inside)', () => {
    expect(isValidTokenName('backup script')).toBe(true);
    expect(isValidTokenName('ci.deploy_1-a')).toBe(true);
    expect(isValidTokenName(' leading')).toBe(false);
    expect(isValidTokenName('')).toBe(false);
    expect(isValidTokenName('semi;colon')).toBe(false);
    expect(isValidTokenName('x'.repeat(63))).toBe(true);
    expect(isValidTokenName('x'.repeat(64))).toBe(false);
  });
  it('checks ISO names', () => {
    expect(isValidIsoName('testguest.iso')).toBe(true);
    expect(isValidIsoName('debian-12.5.0-amd64-netinst.iso')).toBe(true);
    expect(isValidIsoName('x.ISO')).toBe(false);
    expect(isValidIsoName('.hidden.iso')).toBe(false);
    expect(isValidIsoName('a b.iso')).toBe(false);
    expect(isValidIsoName('noext')).toBe(false);
  });
  it('suggests a valid ISO name for any file', () => {
    expect(suggestIsoName('My Distro (x64).ISO')).toBe('My_Distro_x64.iso');
    expect(suggestIsoName('ok-name.iso')).toBe('ok-name.iso');
    expect(suggestIsoName('....iso')).toBe('image.iso');
    expect(isValidIsoName(suggestIsoName('Ünïcode 日本.img'))).toBe(true);
    expect(isValidIsoName(suggestIsoName('y'.repeat(400)))).toBe(true);
  });
  it('derives a disk name from a VM name', () => {
    expect(defaultDiskName('web')).toBe('web-disk');
    expect(defaultDiskName('')).toBe('');
    const long = defaultDiskName('v'.repeat(63));
    expect(long.length).toBe(63);
    expect(isValidDiskName(long)).toBe(true);
  });
});

describe('numbers', () => {
  it('parses whole numbers only', () => {
    expect(parseIntStrict('256')).toBe(256);
    expect(parseIntStrict(' 4 ')).toBe(4);
    expect(parseIntStrict('1.5')).toBeNull();
    expect(parseIntStrict('-1')).toBeNull();
    expect(parseIntStrict('')).toBeNull();
    expect(parseIntStrict('1e3')).toBeNull();
  });
  it('checks ranges', () => {
    expect(inRange(4, 1, 8)).toBe(true);
    expect(inRange(9, 1, 8)).toBe(false);
    expect(inRange(null, 1, 8)).toBe(false);
  });
});
