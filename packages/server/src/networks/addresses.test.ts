import { describe, expect, it } from 'vitest';
import type { NetworkRepo } from './repo.js';
import type { HostNetworks } from '../runtime/network-port.js';
import { AddressBook } from './addresses.js';

describe('AddressBook: the agents are asked at most every agentRefreshMs per VM', () => {
  it('asks a VM\'s agent once per interval, at once for a new process, and keeps what it said in between', async () => {
    let now = 1_000_000;
    let pid = 100;
    let asked = 0;
    let changed = 0;
    const ip = () => `10.9.0.${asked}`;
    const book = new AddressBook({
      repo: { networks: () => [] } as unknown as NetworkRepo,
      host: { availability: () => ({ available: false, reason: 'x' }), leases: () => [] } as unknown as HostNetworks,
      runtime: {
        process: () => ({ pid, pidStart: '1' }),
        agentStatus: () => ({ connected: true, lastSeen: null }),
        agentInfo: async () => {
          asked++;
          return { interfaces: [{ name: 'eth0', mac: '52:54:00:00:00:01', ips: [`${ip()}/24`] }] };
        },
      },
      running: () => ['vm1'],
      changed: () => changed++,
      agentRefreshMs: 30_000,
      now: () => now,
    });
    const vm = { id: 'vm1', status: 'running', nics: [{ id: 'n1', network: 'user', mac: '52:54:00:00:00:01' }] };
    await book.refresh();
    expect(asked).toBe(1);
    expect(book.of(vm).filter((a) => a.source === 'agent').map((a) => a.ip)).toEqual(['10.9.0.1']);
    now += 10_000;
    await book.refresh();
    expect(asked).toBe(1); // within the interval: not asked, the last answer kept
    expect(book.of(vm).filter((a) => a.source === 'agent').map((a) => a.ip)).toEqual(['10.9.0.1']);
    now += 25_000;
    await book.refresh();
    expect(asked).toBe(2);
    expect(book.of(vm).filter((a) => a.source === 'agent').map((a) => a.ip)).toEqual(['10.9.0.2']);
    pid = 101; // the VM was started again: a new QEMU is asked at once
    await book.refresh();
    expect(asked).toBe(3);
    expect(changed).toBe(3);
  });
});
