import { describe, expect, it } from 'vitest';
import { tableRemovable } from './index.js';

describe('tableRemovable', () => {
  const doc = (items: object[]) => JSON.stringify({ nftables: [{ metainfo: {} }, { table: { family: 'inet', name: 'qemu_manager' } }, ...items] });
  it('only when no guest uid is in the set and no network chain has a rule', () => {
    const base = [{ set: { name: 'guest_uids', type: 'uid' } }, { chain: { name: 'guest_output' } }, { rule: { chain: 'guest_output' } }];
    expect(tableRemovable(doc(base))).toBe(true);
    expect(tableRemovable(doc([...base.slice(1), { set: { name: 'guest_uids', elem: [1001] } }]))).toBe(false);
    expect(tableRemovable(doc([...base, { rule: { chain: 'net_forward' } }]))).toBe(false);
    expect(tableRemovable('not json')).toBe(false);
  });
});
