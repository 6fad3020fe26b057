// Networks (issue 11): the networks themselves (list, create, delete) and what the host must
// hold for all of them (up, fixed addresses, rules), kept in step with the records.
import type { CreateNetworkBody, Network, NetworkList } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import { AppError, errorMessage } from '../lib/errors.js';
import { contains, formatIpv4, formatSubnet, lastOf, overlaps, parseIpv4, parseSubnet, type Ipv4Subnet } from '../lib/ipv4.js';
import type { Logger } from '../lib/log.js';
import { nowIso } from '../lib/time.js';
import { tapName } from '../runtime/port.js';
import type { DnatForward, HostNetworkSpec, HostNetworks, ManagedNetworkSpec } from '../runtime/network-port.js';
import { pickIp, type AddressBook } from './addresses.js';
import type { NetworkRepo, NetworkRow } from './repo.js';

/** The user-mode network's subnet: a managed one may not overlap it (a guest on both would be lost). */
const USER_SUBNET = parseSubnet('10.0.2.0/24');

export function isManaged(n: Pick<NetworkRow, 'type'>): n is NetworkRow & { type: 'nat' | 'isolated' } {
  return n.type === 'nat' || n.type === 'isolated';
}

export function managedSpec(n: NetworkRow, hosts: ManagedNetworkSpec['hosts']): ManagedNetworkSpec {
  return {
    id: n.id,
    name: n.name,
    type: n.type as 'nat' | 'isolated',
    bridge: n.bridge!,
    subnet: n.subnet!,
    gateway: n.gateway!,
    dhcp: n.dhcp_start && n.dhcp_end ? { start: n.dhcp_start, end: n.dhcp_end } : null,
    hosts,
  };
}

export interface NetworkDeps {
  repo: NetworkRepo;
  host: HostNetworks;
  addresses: AddressBook;
  log: Logger;
  /** Names of VMs by id (the refusal of a delete names them). */
  vmName: (id: string) => string | null;
  /** Ids of VMs whose QEMU runs here now. */
  running: () => string[];
}

export class NetworkService {
  /** Host changes one at a time (a create's up and rules never interleave with another's). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: NetworkDeps) {}

  /** Runs `fn` after every host change queued before it. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  availability(): { available: boolean; reason: string | null } {
    return this.deps.host.availability();
  }

  list(): NetworkList {
    const { repo } = this.deps;
    const vmsOn = new Map<string, Set<string>>();
    for (const n of repo.allNics()) {
      const set = vmsOn.get(n.network_id) ?? new Set<string>();
      set.add(n.vm_id);
      vmsOn.set(n.network_id, set);
    }
    const managed = this.availability();
    return {
      networks: repo.networks().map((n) => this.toNetwork(n, [...(vmsOn.get(n.id) ?? [])])),
      managed: { available: managed.available, reason: managed.available ? null : (managed.reason ?? 'not available') },
    };
  }

  get(ref: string): Network {
    const n = this.require(ref);
    return this.toNetwork(n, [...new Set(this.deps.repo.nicsOn(n.id).map((x) => x.vm_id))]);
  }

  require(ref: string): NetworkRow {
    const n = this.deps.repo.network(ref);
    if (!n) throw new AppError('NETWORK_NOT_FOUND', `Network not found: ${ref}`);
    return n;
  }

  /** A network a NIC may be put on now (404 unknown; 422 when managed networks are not available here). */
  usable(ref: string): NetworkRow {
    const n = this.require(ref);
    if (n.type !== 'user') this.requireAvailable(`the network ${n.name} (${n.type})`);
    return n;
  }

  requireAvailable(what: string): void {
    const a = this.availability();
    if (!a.available) throw new AppError('NETWORKS_UNAVAILABLE', `Managed and bridge networks are not available on this server (${a.reason ?? 'unknown reason'}): ${what} cannot be used; only the user network is`);
  }

  private toNetwork(n: NetworkRow, vms: string[]): Network {
    const user = n.type === 'user';
    return {
      id: n.id,
      name: n.name,
      type: n.type,
      bridge: n.bridge,
      subnet: user ? formatSubnet(USER_SUBNET) : n.subnet,
      gateway: user ? '10.0.2.2' : n.gateway,
      dhcp: n.dhcp_start && n.dhcp_end ? { start: n.dhcp_start, end: n.dhcp_end } : null,
      leases: isManaged(n)
        ? this.deps.addresses.leasesOf(n.id).map((l) => ({ mac: l.mac, ip: l.ip, hostname: l.hostname, expiresAt: l.expiresAt }))
        : [],
      vms,
      createdAt: n.created_at,
    };
  }

  /**
   * A fixed address for a new NIC on a managed network with DHCP (null on the others): the first
   * of the pool no NIC on it has and not in `taken`. 409 LIMIT_EXCEEDED when the pool is used up.
   */
  allocateIp(n: NetworkRow, taken: ReadonlySet<string> = new Set()): string | null {
    if (!isManaged(n) || !n.dhcp_start || !n.dhcp_end) return null;
    const used = new Set([...taken, ...this.deps.repo.nicsOn(n.id).map((x) => x.ip).filter((ip): ip is string => ip !== null)]);
    const ip = pickIp({ start: n.dhcp_start, end: n.dhcp_end }, used);
    if (!ip) throw new AppError('LIMIT_EXCEEDED', `The DHCP pool of network ${n.name} (${n.dhcp_start} – ${n.dhcp_end}) has no free address left`);
    return ip;
  }

  // --- what the host holds ---------------------------------------------------------------

  hostsOf(networkId: string): ManagedNetworkSpec['hosts'] {
    return this.deps.repo
      .nicsOn(networkId)
      .filter((n) => n.ip !== null)
      .map((n) => ({ mac: n.mac, ip: n.ip! }));
  }

  managedSpecs(except?: string): ManagedNetworkSpec[] {
    return this.deps.repo
      .networks()
      .filter((n) => isManaged(n) && n.id !== except)
      .map((n) => managedSpec(n, this.hostsOf(n.id)));
  }

  /** Every forward to a NIC on a managed network, as DNAT rules (they hold whether the VM runs or not). */
  dnatForwards(extra: readonly DnatForward[] = [], exceptForward?: string): DnatForward[] {
    const { repo } = this.deps;
    const nics = new Map(repo.allNics().map((n) => [n.id, n]));
    const nets = new Map(repo.networks().map((n) => [n.id, n]));
    const out: DnatForward[] = [];
    for (const f of repo.allForwards()) {
      if (f.id === exceptForward) continue;
      const nic = nics.get(f.nic_id);
      const net = nic ? nets.get(nic.network_id) : undefined;
      if (!nic || !net || !isManaged(net) || !nic.ip) continue;
      out.push({ id: f.id, protocol: f.protocol, hostAddress: f.host_address, hostPort: f.host_port, guestIp: nic.ip, guestPort: f.guest_port, bridge: net.bridge! });
    }
    return [...out, ...extra];
  }

  /** Puts the records' fixed addresses and rules on the host again (after NICs or VMs changed). */
  async sync(): Promise<void> {
    const { host } = this.deps;
    if (!host.availability().available) return;
    const specs = this.managedSpecs();
    for (const s of specs) await host.setHosts(s.id, s.hosts);
    await host.applyRules(specs, this.dnatForwards());
  }

  /** sync() in the queue, a failure logged (after a change that is already recorded). */
  resync(why: string): Promise<void> {
    return this.serial(() => this.sync()).catch((err: unknown) => {
      this.deps.log.warn({ err: errorMessage(err), why }, 'the host networks could not be brought in step with the records');
    });
  }

  /**
   * At server start (after the VMs are adopted): the host made to match the records; taps of
   * running VMs' bridge NICs are kept.
   */
  async reconcile(): Promise<void> {
    const { host, repo } = this.deps;
    if (!host.availability().available) return;
    const specs: HostNetworkSpec[] = repo.networks().flatMap((n): HostNetworkSpec[] => {
      if (isManaged(n)) return [managedSpec(n, this.hostsOf(n.id))];
      if (n.type === 'bridge') return [{ id: n.id, name: n.name, type: 'bridge', bridge: n.bridge! }];
      return [];
    });
    const running = new Set(this.deps.running());
    const bridges = new Map(repo.networks().map((n) => [n.id, n.bridge]));
    // tap → bridge of every running VM's NIC on a bridge (managed or host)
    const keep = new Map<string, string>();
    for (const nic of repo.allNics()) {
      const bridge = bridges.get(nic.network_id);
      if (running.has(nic.vm_id) && nic.network_id !== 'user' && bridge) keep.set(tapName(nic.vm_id, nic.slot), bridge);
    }
    await this.serial(() => host.reconcile(specs, this.dnatForwards(), keep));
  }

  /** At server stop: the nftables table goes when no VM runs and no managed network exists. */
  async stop(): Promise<void> {
    const { host, repo } = this.deps;
    if (!host.availability().available) return;
    if (this.deps.running().length > 0 || repo.networks().some(isManaged)) return;
    await this.serial(() => host.removeTableIfEmpty()).catch((err: unknown) => {
      this.deps.log.warn({ err: errorMessage(err) }, 'the nftables table could not be removed');
    });
  }

  // --- create and delete -----------------------------------------------------------------

  async create(body: CreateNetworkBody): Promise<Network> {
    return this.serial(() => this.createSerial(body));
  }

  private async createSerial(body: CreateNetworkBody): Promise<Network> {
    const { repo, host } = this.deps;
    this.requireAvailable(`a ${body.type} network`);
    if (repo.network(body.name)) throw new AppError('NAME_TAKEN', `A network named ${body.name} already exists`);
    const id = crypto.randomUUID();
    const at = nowIso();
    if (body.type === 'bridge') {
      if (body.bridge === undefined) throw new AppError('VALIDATION', 'A bridge network needs "bridge": the name of an existing host bridge');
      if (body.subnet !== undefined || body.dhcp !== undefined) {
        throw new AppError('VALIDATION', 'A bridge network takes no "subnet" or "dhcp": addresses come from the LAN the bridge is on');
      }
      if (body.bridge.startsWith('qm-')) throw new AppError('BRIDGE_INVALID', `${body.bridge} is a bridge of this server's own networks, not a host bridge`);
      const owner = repo.byBridge(body.bridge);
      if (owner) throw new AppError('NETWORK_CONFLICT', `The bridge ${body.bridge} is already the network ${owner.name}`);
      if (!(await host.isBridge(body.bridge))) throw new AppError('BRIDGE_INVALID', `${body.bridge} is not an existing Linux bridge on this host`);
      repo.insertNetwork({ id, name: body.name, type: 'bridge', bridge: body.bridge, subnet: null, gateway: null, dhcp_start: null, dhcp_end: null, created_at: at });
      return this.get(id);
    }
    if (body.bridge !== undefined) throw new AppError('VALIDATION', `A ${body.type} network takes no "bridge": the server makes its own (qm-${body.name})`);
    const bridge = `qm-${body.name}`;
    if (repo.byBridge(bridge)) throw new AppError('NETWORK_CONFLICT', `The bridge ${bridge} is already in use by another network`);
    const taken = [USER_SUBNET, ...repo.networks().filter((n) => n.subnet).map((n) => parseSubnet(n.subnet!))];
    const hostSubnets = (await host.hostSubnets()).flatMap((t) => {
      try {
        return [parseSubnet(t, false)];
      } catch {
        return [];
      }
    });
    const subnet = body.subnet !== undefined ? this.checkSubnet(body.subnet, taken, hostSubnets) : this.freeSubnet([...taken, ...hostSubnets]);
    const gateway = formatIpv4(subnet.base + 1);
    const dhcp = body.dhcp === null ? null : body.dhcp ? checkRange(body.dhcp, subnet, gateway) : { start: formatIpv4(subnet.base + 2), end: formatIpv4(lastOf(subnet) - 1) };
    const row: NetworkRow = {
      id,
      name: body.name,
      type: body.type,
      bridge,
      subnet: formatSubnet(subnet),
      gateway,
      dhcp_start: dhcp?.start ?? null,
      dhcp_end: dhcp?.end ?? null,
      created_at: at,
    };
    const spec = managedSpec(row, []);
    const others = this.managedSpecs();
    const forwards = this.dnatForwards();
    try {
      await host.up(spec);
      await host.applyRules([...others, spec], forwards);
      if (repo.network(body.name)) throw new AppError('NAME_TAKEN', `A network named ${body.name} was created meanwhile`);
      repo.insertNetwork(row);
    } catch (err) {
      // what this create did to the host is undone; nothing is recorded
      await host.down({ id, bridge }).catch((e: unknown) => this.deps.log.warn({ err: errorMessage(e), network: body.name }, 'a failed network could not be taken down'));
      await host.applyRules(others, forwards).catch((e: unknown) => this.deps.log.warn({ err: errorMessage(e) }, 'the rules could not be put back after a failed network'));
      throw err;
    }
    return this.get(id);
  }

  private checkSubnet(text: string, taken: Ipv4Subnet[], hostSubnets: Ipv4Subnet[]): Ipv4Subnet {
    let s: Ipv4Subnet;
    try {
      s = parseSubnet(text);
    } catch (err) {
      throw new AppError('VALIDATION', `subnet: ${errorMessage(err)}`);
    }
    const other = this.deps.repo.networks().find((n) => n.subnet && overlaps(parseSubnet(n.subnet), s));
    if (other) throw new AppError('NETWORK_CONFLICT', `The subnet ${text} overlaps the network ${other.name} (${other.subnet})`);
    if (overlaps(USER_SUBNET, s)) throw new AppError('NETWORK_CONFLICT', `The subnet ${text} overlaps the user network (10.0.2.0/24)`);
    const onHost = [...taken, ...hostSubnets].find((h) => overlaps(h, s));
    if (onHost) throw new AppError('NETWORK_CONFLICT', `The subnet ${text} overlaps ${formatSubnet(onHost)}, which this host already uses`);
    return s;
  }

  private freeSubnet(taken: Ipv4Subnet[]): Ipv4Subnet {
    for (let n = 100; n <= 255; n++) {
      const s = parseSubnet(`192.168.${n}.0/24`);
      if (!taken.some((t) => overlaps(t, s))) return s;
    }
    throw new AppError('NETWORK_CONFLICT', 'No free subnet 192.168.100.0/24 – 192.168.255.0/24 is left: name one with "subnet"');
  }

  async delete(ref: string): Promise<void> {
    const n = this.require(ref);
    if (n.type === 'user') throw new AppError('VALIDATION', 'The user network is built in; it cannot be deleted');
    return this.serial(async () => {
      const { repo, host } = this.deps;
      const current = this.require(n.id);
      const vms = [...new Set(repo.nicsOn(current.id).map((x) => x.vm_id))];
      if (vms.length > 0) {
        const names = vms.map((id) => this.deps.vmName(id) ?? id);
        throw new AppError('NETWORK_IN_USE', `The network ${current.name} is used by ${vms.length === 1 ? 'the VM' : 'the VMs'} ${names.join(', ')}: remove their NICs on it first`);
      }
      repo.deleteNetwork(current.id);
      if (!isManaged(current)) return;
      try {
        await host.applyRules(this.managedSpecs(), this.dnatForwards());
      } catch (err) {
        this.deps.log.warn({ err: errorMessage(err), network: current.name }, 'the rules could not be applied after a network was deleted');
      }
      await host.down({ id: current.id, bridge: current.bridge! });
    });
  }
}

/** A DHCP pool given by the client: inside the subnet, not its network, broadcast or gateway address, start ≤ end. */
function checkRange(r: { start: string; end: string }, s: Ipv4Subnet, gateway: string): { start: string; end: string } {
  const start = parseIpv4(r.start);
  const end = parseIpv4(r.end);
  const gw = parseIpv4(gateway);
  const bad = (ip: number) => !contains(s, ip) || ip === s.base || ip === lastOf(s);
  if (bad(start) || bad(end)) throw new AppError('VALIDATION', `dhcp: the pool ${r.start} – ${r.end} must lie inside ${formatSubnet(s)} (not its network or broadcast address)`);
  if (start > end) throw new AppError('VALIDATION', `dhcp: start ${r.start} is after end ${r.end}`);
  if (gw >= start && gw <= end) throw new AppError('VALIDATION', `dhcp: the pool ${r.start} – ${r.end} holds the gateway ${gateway} (the host's address on the network)`);
  return { start: r.start, end: r.end };
}
