import { describe, expect, it } from 'vitest';
import { ApiError } from '../../api/client';
import { disk, task } from '../../test/fixtures';
import { t } from '../../i18n';
import { diskHref, importBody, importUrlError, refusalField, resultDiskIds, resultDiskLinks, sha256Error, suggestImportName } from './importRules';
import { suggestDiskName, uploadFileError } from './storageRules';

const HEX = 'a'.repeat(32) + '0123456789ABCDEF'.repeat(2);

describe('Import dialog checks', () => {
  it('accepts only an absolute http(s) URL', () => {
    expect(importUrlError('http://127.0.0.1:8080/tiny.qcow2')).toBeNull();
    expect(importUrlError('  https://example.org/a/b.ova?x=1  ')).toBeNull();
    expect(importUrlError('')).toBe(t.importDisk.urlRequired);
    expect(importUrlError('   ')).toBe(t.importDisk.urlRequired);
    expect(importUrlError('example.org/tiny.qcow2')).toBe(t.importDisk.urlInvalid);
    expect(importUrlError('/tiny.qcow2')).toBe(t.importDisk.urlInvalid);
    expect(importUrlError('ftp://example.org/tiny.qcow2')).toBe(t.importDisk.urlScheme('ftp'));
    expect(importUrlError('file:///etc/passwd')).toBe(t.importDisk.urlScheme('file'));
    expect(importUrlError('https://' + 'a'.repeat(4100))).toBe(t.importDisk.urlTooLong(4096));
  });
  it('accepts an empty sha256 or exactly 64 hex digits', () => {
    expect(sha256Error('')).toBeNull();
    expect(sha256Error(HEX)).toBeNull();
    expect(sha256Error(` ${HEX} `)).toBeNull();
    expect(sha256Error(HEX.slice(1))).toBe(t.importDisk.sha256Invalid(63));
    expect(sha256Error(HEX + '0')).toBe(t.importDisk.sha256Invalid(65));
    expect(sha256Error('g'.repeat(64))).toBe(t.importDisk.sha256Invalid(64));
  });
  it('sends a trimmed body, the sha256 in lower case and only when given', () => {
    expect(importBody({ name: 'd', url: ' http://h/x ', sha256: '', format: 'qcow2' })).toEqual({ name: 'd', url: 'http://h/x', format: 'qcow2' });
    expect(importBody({ name: 'd', url: 'http://h/x', sha256: ` ${HEX} `, format: 'raw' })).toEqual({ name: 'd', url: 'http://h/x', sha256: HEX.toLowerCase(), format: 'raw' });
  });
  it('suggests a disk name from the URL, short enough for name-diskN', () => {
    expect(suggestImportName('http://h/images/Debian%2012%20(cloud).qcow2?x=1')).toBe('Debian_12_cloud');
    expect(suggestImportName('https://h/appliance.ova')).toBe('appliance');
    expect(suggestImportName('https://h/')).toBe('');
    expect(suggestImportName('not a url')).toBe('');
    expect(suggestImportName(`https://h/${'x'.repeat(100)}.img`).length).toBeLessThanOrEqual(56);
  });
  it('puts a refusal next to the field it is about', () => {
    expect(refusalField(new ApiError(409, 'NAME_TAKEN', 'A disk named x already exists'))).toBe('name');
    expect(refusalField(new ApiError(400, 'VALIDATION', 'url must be http:// or https://, not ftp:'))).toBe('url');
    expect(refusalField(new ApiError(400, 'VALIDATION', 'body.sha256 must match pattern "^[0-9a-fA-F]{64}$"'))).toBe('sha256');
    expect(refusalField(new ApiError(400, 'VALIDATION', 'body.name may only contain letters'))).toBe('name');
    expect(refusalField(new ApiError(409, 'VM_NOT_STOPPED', 'stop it'))).toBeNull();
    expect(refusalField(new ApiError(500, 'NAME_TAKEN', 'x'))).toBeNull();
    expect(refusalField('The task failed: sha256 mismatch')).toBeNull();
    expect(refusalField(null)).toBeNull();
  });
});

describe('what a finished import or conversion made', () => {
  const a = disk({ id: 'id-a', name: 'tiny', format: 'qcow2' });
  const b = disk({ id: 'id-b', name: 'app-disk1', format: 'raw' });
  it('reads { disk } and { disks } as ids or objects, only once the task succeeded', () => {
    expect(resultDiskIds(task({ status: 'succeeded', result: { disk: 'id-a' } }))).toEqual(['id-a']);
    expect(resultDiskIds(task({ status: 'succeeded', result: { disk: { id: 'id-a' } } }))).toEqual(['id-a']);
    expect(resultDiskIds(task({ status: 'succeeded', result: { disks: ['id-a', 'id-b'] } }))).toEqual(['id-a', 'id-b']);
    expect(resultDiskIds(task({ status: 'succeeded', result: { disks: [{ id: 'id-a' }, 7, 'id-b'] } }))).toEqual(['id-a', 'id-b']);
    expect(resultDiskIds(task({ status: 'running', result: { disk: 'id-a' } }))).toEqual([]);
    expect(resultDiskIds(task({ status: 'failed', result: null }))).toEqual([]);
    expect(resultDiskIds(task({ status: 'succeeded', result: null }))).toEqual([]);
    expect(resultDiskIds(undefined)).toEqual([]);
  });
  it('links each disk to its row on the disks page, named from the list', () => {
    const links = resultDiskLinks(task({ status: 'succeeded', result: { disks: ['id-a', 'id-b', 'abcdef0123456789'] } }), [a, b]);
    expect(links).toEqual([
      { id: 'id-a', name: 'tiny', format: 'qcow2', href: '/disks#disk-id-a' },
      { id: 'id-b', name: 'app-disk1', format: 'raw', href: '/disks#disk-id-b' },
      { id: 'abcdef0123456789', name: 'abcdef01', format: null, href: diskHref('abcdef0123456789') },
    ]);
    expect(resultDiskLinks(task({ status: 'failed', error: 'sha256 mismatch' }), [a])).toEqual([]);
  });
});

describe('Upload picker', () => {
  it('sends an .ova to import, and takes vdi and vhdx names', () => {
    expect(uploadFileError({ name: 'appliance.ova', size: 10 })).toBe(t.storage.uploadOva);
    expect(uploadFileError({ name: 'x.qcow2', size: 0 })).toBe(t.storage.uploadEmpty);
    expect(uploadFileError({ name: 'x.vdi', size: 10 })).toBeNull();
    expect(suggestDiskName('win.vhdx')).toBe('win');
    expect(suggestDiskName('box.vdi')).toBe('box');
    expect(t.storage.uploadHint).toMatch(/vdi/);
    expect(t.storage.uploadHint).toMatch(/vhdx/);
  });
});
