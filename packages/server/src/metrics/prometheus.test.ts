import { describe, expect, it } from 'vitest';
import { parsePrometheus } from '../../../../test/prometheus.js';
import { prometheusText } from './prometheus.js';
import type { VmCounters } from './service.js';

const last: VmCounters = {
  at: 0, cpuSeconds: 12.5, rssBytes: 1 << 20, diskReadBytes: 10, diskWriteBytes: 20, diskReadOps: 1, diskWriteOps: 2, netRxBytes: null, netTxBytes: null, cpuPercent: 97.5,
};
const host = {
  timestamp: new Date(0).toISOString(),
  cpu: { cores: 2, percent: 12.5, loadAverage: [0, 0, 0] },
  memory: { totalBytes: 100, availableBytes: 50 },
  storage: [{ kind: 'storage-root' as const, name: '/d', path: '/d', freeBytes: 5, totalBytes: 10 }],
};

describe('Prometheus text (issue 14)', () => {
  it('parses strictly, with vm/name labels escaped, and no samples for what is not measured', () => {
    const text = prometheusText({
      vms: [
        { id: 'a', name: 'web "prod"\\1\nx', status: 'running', last },
        { id: 'b', name: 'idle', status: 'stopped', last: null },
      ],
      host,
    });
    const fams = parsePrometheus(text);
    expect(fams.get('qemu_manager_vm_up')!.samples).toEqual([
      { labels: { vm: 'a', name: 'web "prod"\\1\nx' }, value: 1 },
      { labels: { vm: 'b', name: 'idle' }, value: 0 },
    ]);
    expect(fams.get('qemu_manager_vm_cpu_seconds_total')).toMatchObject({ type: 'counter', samples: [{ labels: { vm: 'a' }, value: 12.5 }] });
    expect(fams.get('qemu_manager_vm_disk_written_bytes_total')!.samples[0].value).toBe(20);
    expect(fams.get('qemu_manager_vm_network_receive_bytes_total')!.samples).toEqual([]);
    expect(fams.get('qemu_manager_host_storage_free_bytes')!.samples).toEqual([{ labels: { kind: 'storage-root', name: '/d', path: '/d' }, value: 5 }]);
    for (const name of fams.keys()) expect(name).toMatch(/^qemu_manager_/);
  });

  it('per-NIC counters carry a nic label; the guest memory shows when the guest reports it', () => {
    const withNics: VmCounters = {
      ...last,
      guestMemory: { totalBytes: 200, availableBytes: 150 },
      nics: [{ id: 'nic1', rxBytes: 7, txBytes: 9 }, { id: 'nic2', rxBytes: 1, txBytes: 2 }],
    };
    const fams = parsePrometheus(prometheusText({ vms: [{ id: 'a', name: 'n', status: 'running', last: withNics }, { id: 'b', name: 'm', status: 'running', last }], host }));
    expect(fams.get('qemu_manager_vm_nic_receive_bytes_total')!.samples).toEqual([
      { labels: { vm: 'a', name: 'n', nic: 'nic1' }, value: 7 },
      { labels: { vm: 'a', name: 'n', nic: 'nic2' }, value: 1 },
    ]);
    expect(fams.get('qemu_manager_vm_nic_transmit_bytes_total')!.samples.map((x) => x.value)).toEqual([9, 2]);
    expect(fams.get('qemu_manager_vm_guest_memory_total_bytes')!.samples).toEqual([{ labels: { vm: 'a', name: 'n' }, value: 200 }]);
    expect(fams.get('qemu_manager_vm_guest_memory_available_bytes')!.samples).toEqual([{ labels: { vm: 'a', name: 'n' }, value: 150 }]);
  });

  it('the parser refuses malformed text', () => {
    expect(() => parsePrometheus('x 1')).toThrow(/line feed/);
    expect(() => parsePrometheus('x{a="b} 1\n')).toThrow();
    expect(() => parsePrometheus('x{a="\\q"} 1\n')).toThrow(/escape/);
    expect(() => parsePrometheus('x 1\nx 2\n')).toThrow(/twice/);
    expect(() => parsePrometheus('x one\n')).toThrow(/bad value/);
  });
});
