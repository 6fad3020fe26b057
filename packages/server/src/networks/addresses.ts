// Networks (issue 11): fixed addresses from a pool, and what the server knows of a VM's addresses
// (DHCP leases, the user-mode address, the guest agent's), cached so listing VMs stays cheap.
import type { VmAddress } from '@qemu-manager/contract';
import { formatIpv4, parseIpv4 } from '../lib/ipv4.js';
import type { GuestAgentInfo, VmRuntime } from '../runtime/port.js';
import type { HostLease, HostNetworks } from '../runtime/network-port.js';
import { USER_GUEST_IP, type NetworkRepo } from './repo.js';

/** The first address of the pool no one has (null: the pool is used up). */
export function pickIp(range: { start: string; end: string }, taken: ReadonlySet<string>): string | null {
  const end = parseIpv4(range.end);
  for (let n = parseIpv4(range.start); n <= end; n++) {
    const ip = formatIpv4(n);
    if (!taken.has(ip)) return ip;
  }
  return null;
}

/** How often leases are read again at most (GET /api/vms stays cheap). */
export const ADDRESS_REFRESH_MS = 3000;
/**
 * How often one VM's agent is asked for its interfaces again (a VM whose agent just connected is
 * asked at the next refresh). Asking every VM's agent at every refresh cost the server about 2 %
 * of a core with 50 VMs (bench: metrics row); addresses rarely change.
 */
export const AGENT_ADDRESS_REFRESH_MS = 30_000;

/**
 * The addresses of each VM, from the records and two caches: each managed network's leases and
 * each running VM's agent interfaces, read by refresh() (a timer; at most every few seconds).
 * A refresh that finds a change calls `changed` (the VM list cache follows the repo version).
 */
export class AddressBook {
  private leases = new Map<string, HostLease[]>();
  private agentIfaces = new Map<string, NonNullable<GuestAgentInfo['interfaces']>>();
  /** When each VM's agent was last asked (ms), by the process it runs as (a new QEMU is asked again). */
  private agentAsked = new Map<string, { at: number; pid: number }>();
  private last = '';
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly deps: {
      repo: NetworkRepo;
      host: HostNetworks;
      runtime: Pick<VmRuntime, 'agentStatus' | 'agentInfo' | 'process'>;
      /** Ids of VMs that run now. */
      running: () => string[];
      changed: () => void;
      /** AGENT_ADDRESS_REFRESH_MS unless given. */
      agentRefreshMs?: number;
      now?: () => number;
    },
  ) {}

  leasesOf(networkId: string): HostLease[] {
    return this.leases.get(networkId) ?? [];
  }

  /** The addresses of one VM: its NICs' (user: while it runs; managed: its lease), then the agent's. */
  of(vm: { id: string; status: string; nics: ReadonlyArray<{ id: string; network: string; mac: string }> }): VmAddress[] {
    const out: VmAddress[] = [];
    const live = vm.status === 'running' || vm.status === 'paused';
    const byMac = new Map(vm.nics.map((n) => [n.mac.toLowerCase(), n]));
    for (const nic of vm.nics) {
      if (nic.network === 'user') {
        if (live) out.push({ nic: nic.id, mac: nic.mac, ip: USER_GUEST_IP, source: 'user' });
        continue;
      }
      const lease = this.leasesOf(nic.network).find((l) => l.mac.toLowerCase() === nic.mac.toLowerCase());
      if (lease) out.push({ nic: nic.id, mac: nic.mac, ip: lease.ip, source: 'dhcp' });
    }
    if (live) {
      for (const iface of this.agentIfaces.get(vm.id) ?? []) {
        const mac = iface.mac?.toLowerCase() ?? null;
        if (iface.name === 'lo' || mac === '00:00:00:00:00:00') continue;
        const nic = mac ? byMac.get(mac) : undefined;
        for (const cidr of iface.ips) {
          const ip = cidr.split('/')[0]!;
          if (ip === '127.0.0.1' || ip === '::1' || ip.startsWith('127.')) continue;
          if (out.some((a) => a.ip === ip && a.nic === (nic?.id ?? null))) continue;
          out.push({ nic: nic?.id ?? null, mac: nic?.mac ?? iface.mac ?? null, ip, source: 'agent' });
        }
      }
    }
    return out;
  }

  /** Reads the leases of every managed network and the interfaces of every running VM's agent. */
  async refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = this.read().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async read(): Promise<void> {
    const { repo, host, runtime } = this.deps;
    const leases = new Map<string, HostLease[]>();
    if (host.availability().available) {
      for (const n of repo.networks()) if (n.type === 'nat' || n.type === 'isolated') leases.set(n.id, host.leases(n.id));
    }
    const ifaces = new Map<string, NonNullable<GuestAgentInfo['interfaces']>>();
    const asked = new Map<string, { at: number; pid: number }>();
    const now = (this.deps.now ?? Date.now)();
    const every = this.deps.agentRefreshMs ?? AGENT_ADDRESS_REFRESH_MS;
    for (const id of this.deps.running()) {
      const proc = runtime.process(id);
      if (!runtime.agentInfo || !runtime.agentStatus?.(id).connected || !proc) continue;
      const before = this.agentAsked.get(id);
      if (before && before.pid === proc.pid && now - before.at < every) {
        asked.set(id, before);
        const kept = this.agentIfaces.get(id);
        if (kept) ifaces.set(id, kept);
        continue;
      }
      asked.set(id, { at: now, pid: proc.pid });
      try {
        const info = await runtime.agentInfo(id);
        if (info.interfaces) ifaces.set(id, info.interfaces);
      } catch {
        // the agent stopped answering: no addresses from it
      }
    }
    this.agentAsked = asked;
    const key = JSON.stringify([[...leases], [...ifaces]]);
    this.leases = leases;
    this.agentIfaces = ifaces;
    if (key !== this.last) {
      this.last = key;
      this.deps.changed();
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), ADDRESS_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
