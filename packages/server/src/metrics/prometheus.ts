import type { HostMetrics } from '@qemu-manager/contract';
import type { PromVm } from './service.js';

/**
 * Metrics (issue 14): the Prometheus text exposition format (version 0.0.4), written here rather
 * than by a client library: a snapshot of the last sampling round, `qemu_manager_` names, `vm`
 * (id) and `name` labels, label values escaped as the format requires.
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A label value: backslash, double quote and line feed escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return String(x);
}

type Labels = Record<string, string>;

class Family {
  readonly lines: string[] = [];
  constructor(
    readonly name: string,
    readonly type: 'gauge' | 'counter',
    readonly help: string,
  ) {}
  add(labels: Labels, value: number | null): void {
    if (value === null) return;
    const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
    this.lines.push(`${this.name}${l ? `{${l}}` : ''} ${num(value)}`);
  }
  text(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...this.lines].join('\n');
  }
}

export function prometheusText(snap: { vms: PromVm[]; host: HostMetrics }): string {
  const f = (name: string, type: 'gauge' | 'counter', help: string) => new Family(`qemu_manager_${name}`, type, help);
  const up = f('vm_up', 'gauge', '1 while the VM runs (sampled), else 0');
  const cpuPct = f('vm_cpu_percent', 'gauge', 'CPU used by the VM process over the last interval, percent of one core');
  const cpuSec = f('vm_cpu_seconds_total', 'counter', 'CPU time of the VM process since it started');
  const rss = f('vm_memory_rss_bytes', 'gauge', 'Resident memory of the VM process');
  const rdB = f('vm_disk_read_bytes_total', 'counter', 'Bytes read by the guest from its disks since the VM started');
  const wrB = f('vm_disk_written_bytes_total', 'counter', 'Bytes written by the guest to its disks since the VM started');
  const rdO = f('vm_disk_read_ops_total', 'counter', 'Disk read operations since the VM started');
  const wrO = f('vm_disk_write_ops_total', 'counter', 'Disk write operations since the VM started');
  const rx = f('vm_network_receive_bytes_total', 'counter', 'Bytes received by the VM NICs (where the NIC backend counts them)');
  const tx = f('vm_network_transmit_bytes_total', 'counter', 'Bytes sent by the VM NICs (where the NIC backend counts them)');
  const nicRx = f('vm_nic_receive_bytes_total', 'counter', 'Bytes received by one NIC of the VM (tap NICs only)');
  const nicTx = f('vm_nic_transmit_bytes_total', 'counter', 'Bytes sent by one NIC of the VM (tap NICs only)');
  const gMemT = f('vm_guest_memory_total_bytes', 'gauge', 'Memory the guest sees (its balloon driver\'s report)');
  const gMemA = f('vm_guest_memory_available_bytes', 'gauge', 'Memory the guest could still use (its balloon driver\'s report)');
  for (const vm of snap.vms) {
    const l = { vm: vm.id, name: vm.name };
    const s = vm.last;
    up.add(l, s ? 1 : 0);
    if (!s) continue;
    cpuPct.add(l, s.cpuPercent);
    cpuSec.add(l, s.cpuSeconds);
    rss.add(l, s.rssBytes);
    rdB.add(l, s.diskReadBytes);
    wrB.add(l, s.diskWriteBytes);
    rdO.add(l, s.diskReadOps);
    wrO.add(l, s.diskWriteOps);
    rx.add(l, s.netRxBytes);
    tx.add(l, s.netTxBytes);
    for (const n of s.nics ?? []) {
      nicRx.add({ ...l, nic: n.id }, n.rxBytes);
      nicTx.add({ ...l, nic: n.id }, n.txBytes);
    }
    gMemT.add(l, s.guestMemory?.totalBytes ?? null);
    gMemA.add(l, s.guestMemory?.availableBytes ?? null);
  }
  const h = snap.host;
  const hostCpu = f('host_cpu_percent', 'gauge', 'Busy share of all host cores over the last interval');
  hostCpu.add({}, h.cpu.percent);
  const cores = f('host_cpu_cores', 'gauge', 'Host CPU cores');
  cores.add({}, h.cpu.cores);
  const memT = f('host_memory_total_bytes', 'gauge', 'Host memory');
  memT.add({}, h.memory.totalBytes);
  const memA = f('host_memory_available_bytes', 'gauge', 'Host memory available');
  memA.add({}, h.memory.availableBytes);
  const free = f('host_storage_free_bytes', 'gauge', 'Free space of a storage root or backup target');
  const total = f('host_storage_size_bytes', 'gauge', 'Size of the file system of a storage root or backup target');
  for (const s of h.storage) {
    const l = { kind: s.kind, name: s.name, path: s.path };
    free.add(l, s.freeBytes);
    total.add(l, s.totalBytes);
  }
  return [up, cpuPct, cpuSec, rss, gMemT, gMemA, rdB, wrB, rdO, wrO, rx, tx, nicRx, nicTx, hostCpu, cores, memT, memA, free, total].map((x) => x.text()).join('\n') + '\n';
}
