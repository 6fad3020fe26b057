import { describe, expect, it } from 'vitest';
import { disk } from '../../test/fixtures';
import { t } from '../../i18n';
import { chainLabel, diskChain, newDiskNameError, resizeSizeError, suggestCloneName, suggestDiskName } from './storageRules';

describe('Resize dialog checks', () => {
  it('accepts only a whole number of GB larger than the disk now', () => {
    expect(resizeSizeError(10, '11')).toBeNull();
    expect(resizeSizeError(10, '10')).toBe(t.storage.sizeNotLarger(10));
    expect(resizeSizeError(10, '4')).toBe(t.storage.sizeNotLarger(10));
    expect(resizeSizeError(10, '10.5')).toBe(t.storage.sizeInvalid(16384));
    expect(resizeSizeError(10, '')).toBe(t.storage.sizeInvalid(16384));
    expect(resizeSizeError(10, '16385')).toBe(t.storage.sizeInvalid(16384));
    expect(resizeSizeError(10, '16384')).toBeNull();
  });
});

describe('Clone and upload names', () => {
  it('refuses an invalid name or one in use', () => {
    expect(newDiskNameError('data-clone', [{ name: 'data' }])).toBeNull();
    expect(newDiskNameError('data', [{ name: 'data' }])).toBe(t.storage.cloneNameTaken);
    expect(newDiskNameError('../x', [])).toBe(t.disks.nameInvalid);
  });
  it('suggests a free copy name within 63 characters', () => {
    expect(suggestCloneName('data', ['data'])).toBe('data-clone');
    expect(suggestCloneName('data', ['data-clone', 'data-clone2'])).toBe('data-clone3');
    const long = suggestCloneName('d'.repeat(63), []);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(newDiskNameError(long, [])).toBeNull();
  });
  it('turns an image file name into a disk name', () => {
    expect(suggestDiskName('Debian 12 (cloud).qcow2')).toBe('Debian_12_cloud');
    expect(suggestDiskName('tiny.img')).toBe('tiny');
    expect(suggestDiskName('...')).toBe('disk');
    expect(newDiskNameError(suggestDiskName('ü'.repeat(100) + 'x'.repeat(100) + '.vmdk'), [])).toBeNull();
  });
});

describe('backing chains in words', () => {
  const base = disk({ id: 'b', name: 'base', path: '/d/base.qcow2', children: ['c1', 'c2'] });
  const c1 = disk({ id: 'c1', name: 'clone-a', path: '/d/clone-a.qcow2', backingFile: '/d/base.qcow2', children: [] });
  const c2 = disk({ id: 'c2', name: 'clone-b', path: '/d/clone-b.qcow2', backingFile: '/d/base.qcow2', children: [] });
  const all = [base, c1, c2];
  it('names the base of an overlay and the overlays of a base', () => {
    expect(chainLabel(diskChain(c1, all))).toBe('backs onto base');
    expect(chainLabel(diskChain(base, all))).toBe('base of clone-a, clone-b');
    expect(diskChain(base, all).baseOf.map((c) => c.id)).toEqual(['c1', 'c2']);
  });
  it('says nothing for a disk outside any chain, and copes with unknown disks', () => {
    expect(chainLabel(diskChain(disk({ backingFile: null, children: [] }), all))).toBeNull();
    expect(chainLabel(diskChain(disk({}), all))).toBeNull();
    expect(diskChain(disk({ backingFile: '/elsewhere.qcow2' }), all).backsOnto).toEqual({ id: null, name: t.storage.unknownDisk });
    expect(diskChain(disk({ children: ['abcdef0123456789'] }), all).baseOf[0]!.name).toBe('abcdef01');
  });
});
