/**
 * Networks (issue 11): a fake host network stack for the in-process tier. It implements the
 * HostNetworks and TapDevices ports the way hostnet/ behaves (a network is up or not, rules are
 * replaced whole, fixed addresses per network) without touching the host. Tests steer it: make
 * the next call of a method fail, say whether managed networks are available, which bridges and
 * subnets the host has, which ports are taken, what leases dnsmasq would report.
 */
import type { DnatForward, HostLease, HostNetworkSpec, HostNetworks, ManagedNetworkSpec, NetworkHost } from '../../packages/server/src/runtime/network-port.js';
import type { TapDevices } from '../../packages/server/src/runtime/port.js';

type Method = 'up' | 'down' | 'setHosts' | 'applyRules' | 'reconcile' | 'removeTableIfEmpty' | 'create' | 'remove';

export class FakeHostNetworks implements HostNetworks, TapDevices {
  available: { available: boolean; reason: string | null } = { available: true, reason: null };
  /** Host bridges that exist (isBridge). */
  readonly bridges = new Set<string>(['br0']);
  /** Subnets the host uses (hostSubnets). */
  readonly subnets: string[] = ['192.168.100.0/24'];
  /** `protocol address:port` taken by something else on the host (portFree). */
  readonly takenPorts = new Set<string>();
  /** Managed networks that are up (by id), with their fixed addresses. */
  readonly upNets = new Map<string, ManagedNetworkSpec>();
  readonly hosts = new Map<string, NetworkHost[]>();
  /** What applyRules last got. */
  rules: { networks: ManagedNetworkSpec[]; forwards: DnatForward[] } = { networks: [], forwards: [] };
  /** What dnsmasq would report (a test sets them). */
  readonly leaseTable = new Map<string, HostLease[]>();
  readonly taps = new Map<string, { uid: number | null; bridge: string }>();
  readonly calls: Array<{ method: Method; arg: string }> = [];
  reconciled: { networks: HostNetworkSpec[]; forwards: DnatForward[]; keepTaps: Array<[string, string]> } | null = null;
  tableRemoved = 0;
  private readonly failures = new Map<Method, unknown[]>();

  failNext(method: Method, err: unknown): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), err]);
  }

  count(method: Method): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  private enter(method: Method, arg: string): void {
    this.calls.push({ method, arg });
    const f = this.failures.get(method);
    if (f?.length) throw f.shift();
  }

  availability(): { available: boolean; reason: string | null } {
    return this.available;
  }

  async hostSubnets(): Promise<string[]> {
    return [...this.subnets];
  }

  async isBridge(name: string): Promise<boolean> {
    return this.bridges.has(name);
  }

  async up(spec: ManagedNetworkSpec): Promise<void> {
    this.enter('up', spec.id);
    this.upNets.set(spec.id, spec);
    this.hosts.set(spec.id, [...spec.hosts]);
  }

  async down(spec: { id: string; bridge: string }): Promise<void> {
    this.enter('down', spec.id);
    this.upNets.delete(spec.id);
    this.hosts.delete(spec.id);
  }

  async setHosts(networkId: string, hosts: readonly NetworkHost[]): Promise<void> {
    this.enter('setHosts', networkId);
    this.hosts.set(networkId, [...hosts]);
  }

  async applyRules(networks: readonly ManagedNetworkSpec[], forwards: readonly DnatForward[]): Promise<void> {
    this.enter('applyRules', `${networks.length}/${forwards.length}`);
    this.rules = { networks: [...networks], forwards: [...forwards] };
  }

  leases(networkId: string): HostLease[] {
    return this.leaseTable.get(networkId) ?? [];
  }

  async reconcile(networks: readonly HostNetworkSpec[], forwards: readonly DnatForward[], keepTaps: ReadonlyMap<string, string>): Promise<void> {
    this.enter('reconcile', String(networks.length));
    this.reconciled = { networks: [...networks], forwards: [...forwards], keepTaps: [...keepTaps] };
    for (const n of networks) if (n.type !== 'bridge') this.upNets.set(n.id, n);
    this.rules = { networks: networks.filter((n): n is ManagedNetworkSpec => n.type !== 'bridge'), forwards: [...forwards] };
  }

  async portFree(protocol: 'tcp' | 'udp', address: string, port: number): Promise<boolean> {
    return !this.takenPorts.has(`${protocol} ${address}:${port}`) && !this.takenPorts.has(`${protocol} *:${port}`);
  }

  async removeTableIfEmpty(): Promise<void> {
    this.enter('removeTableIfEmpty', '');
    this.tableRemoved++;
  }

  // TapDevices
  async create(name: string, uid: number | null, bridge: string): Promise<void> {
    this.enter('create', name);
    this.taps.set(name, { uid, bridge });
  }

  async remove(name: string): Promise<void> {
    this.enter('remove', name);
    this.taps.delete(name);
  }

  stats(name: string): { rxBytes: number; txBytes: number } | null {
    return this.taps.has(name) ? { rxBytes: 0, txBytes: 0 } : null;
  }
}
