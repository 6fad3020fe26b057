import { describe, expect, it } from 'vitest';
import { disk, vm } from '../../test/fixtures';
import { attachableDisks, canDeleteDisk, deleteDiskBlockedReason } from './diskRules';

describe('disk rules', () => {
  const owner = vm({ id: 'vm-1', name: 'web' });
  it('blocks deleting an attached disk and names the VM', () => {
    const d = disk({ attachedTo: 'vm-1' });
    expect(canDeleteDisk(d)).toBe(false);
    expect(deleteDiskBlockedReason(d, [owner])).toBe('Detach from web to delete.');
    expect(deleteDiskBlockedReason(d, [])).toMatch(/another machine/);
  });
  it('blocks deleting while creating', () => {
    const d = disk({ status: 'creating' });
    expect(canDeleteDisk(d)).toBe(false);
    expect(deleteDiskBlockedReason(d, [])).toMatch(/Wait/);
  });
  it('allows free disks, also failed ones', () => {
    expect(canDeleteDisk(disk())).toBe(true);
    expect(canDeleteDisk(disk({ status: 'error', error: 'x' }))).toBe(true);
    expect(deleteDiskBlockedReason(disk(), [])).toBeNull();
  });
  it('lists only ready, free disks for attaching', () => {
    const list = [disk({ id: 'a' }), disk({ id: 'b', attachedTo: 'vm-1' }), disk({ id: 'c', status: 'creating' }), disk({ id: 'd', status: 'error' })];
    expect(attachableDisks(list).map((d) => d.id)).toEqual(['a']);
  });
});
