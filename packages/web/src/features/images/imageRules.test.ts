import { describe, expect, it } from 'vitest';
import { ApiError } from '../../api/client';
import { deleteRefusal, downloadBody, downloadErrors, imageNameError, shortSha, suggestImageName } from './imageRules';

const form = { name: 'debian-12', url: 'https://cloud.debian.org/d.qcow2', mode: 'none' as const, sha256: '', checksumUrl: '' };

describe('image rules', () => {
  it('names follow the contract and must be new', () => {
    expect(imageNameError('debian-12', [])).toBeNull();
    expect(imageNameError('-x', [])).toMatch(/letters/);
    expect(imageNameError('debian-12', [{ name: 'debian-12' }])).toBe('An image with this name already exists.');
    expect(suggestImageName('debian-12-genericcloud-amd64.qcow2')).toBe('debian-12-genericcloud-amd64');
    expect(suggestImageName('https://x.org/a/Fedora Cloud.qcow2')).toBe('Fedora_Cloud');
  });
  it('the download body carries only the chosen checksum', () => {
    expect(downloadBody(form)).toEqual({ name: 'debian-12', url: form.url });
    expect(downloadBody({ ...form, mode: 'sha256', sha256: ' AB'.padEnd(65, 'c') })).toEqual({ name: 'debian-12', url: form.url, sha256: 'ab'.padEnd(64, 'c') });
    expect(downloadBody({ ...form, mode: 'checksumUrl', checksumUrl: 'https://x/SHA512SUMS', sha256: 'ignored' })).toEqual({ name: 'debian-12', url: form.url, checksumUrl: 'https://x/SHA512SUMS' });
  });
  it('refuses a non-http URL, a bad sha256 and a missing checksum URL before any request', () => {
    expect(downloadErrors({ ...form, url: 'file:///etc/passwd' }, []).url).toMatch(/Only http/);
    expect(downloadErrors({ ...form, mode: 'sha256', sha256: 'abc' }, []).sha256).toMatch(/64 hexadecimal/);
    expect(downloadErrors({ ...form, mode: 'checksumUrl' }, []).checksumUrl).toMatch(/checksum list/);
    expect(Object.values(downloadErrors(form, [])).every((e) => e === null)).toBe(true);
  });
  it('an image in use is explained in words', () => {
    expect(deleteRefusal(new ApiError(409, 'IMAGE_IN_USE', 'Image debian-12 backs disks d1'))).toMatch(/delete those disks/);
    expect(deleteRefusal(new ApiError(404, 'NOT_FOUND', 'No such image'))).toBe('No such image');
    expect(shortSha('a'.repeat(64))).toBe(`${'a'.repeat(12)}…`);
  });
});
