import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableRemovable, tunOpenToUsers } from './index.js';

describe('tableRemovable', () => {
  const doc = (items: object[]) => JSON.stringify({ nftables: [{ metainfo: {} }, { table: { family: 'inet', name: 'qemu_manager' } }, ...items] });
  it('only when no guest uid is in the set and no network chain has a rule', () => {
    const base = [{ set: { name: 'guest_uids', type: 'uid' } }, { chain: { name: 'guest_output' } }, { rule: { chain: 'guest_output' } }];
    const none = () => false;
    expect(tableRemovable(doc(base), none)).toBe(true);
    // a uid some process runs as holds the table; uids of nothing running do not
    const withUids = doc([...base.slice(1), { set: { name: 'guest_uids', elem: [1001, 1002] } }]);
    expect(tableRemovable(withUids, (u) => u === 1002)).toBe(false);
    expect(tableRemovable(withUids, none)).toBe(true);
    expect(tableRemovable(doc([...base.slice(1), { set: { name: 'guest_uids', elem: ['odd'] } }]), none)).toBe(false);
    expect(tableRemovable(doc([...base, { rule: { chain: 'net_forward' } }]), none)).toBe(false);
    expect(tableRemovable('not json', none)).toBe(false);
  });
});

describe('tunOpenToUsers', () => {
  it('makes a 0600 tun node 0666 (QEMU users attach to their own taps by name) and leaves a 0666 one as it is', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-tun-'));
    try {
      const f = path.join(dir, 'tun');
      fs.writeFileSync(f, '');
      fs.chmodSync(f, 0o600);
      tunOpenToUsers(f);
      expect(fs.statSync(f).mode & 0o7777).toBe(0o666);
      fs.chmodSync(f, 0o666);
      tunOpenToUsers(f);
      expect(fs.statSync(f).mode & 0o7777).toBe(0o666);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
