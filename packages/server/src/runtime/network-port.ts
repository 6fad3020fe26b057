/**
 * Networks (issue 11): what the domain needs from the host's network stack, and nothing of how it
 * is driven. `hostnet/` is the adapter (iproute2, dnsmasq, nftables); the in-process tests pass a
 * fake. Everything it makes on the host is named so it can be found again: bridges `qm-<name>`,
 * taps `qm-<8 hex>.<slot>` (see tapName in port.ts), the nftables table `inet qemu_manager`
 * (chains of its own beside the guest isolation's), and dnsmasq's pid, lease and host files under
 * `$DATA_DIR/run/net/<network id>.*`. Failures are AppErrors (NETWORK_SETUP_FAILED with what the
 * host said; BRIDGE_INVALID; NETWORKS_UNAVAILABLE).
 */

/** A fixed address of a NIC on a managed network (a dnsmasq dhcp-host entry). */
export interface NetworkHost {
  mac: string;
  ip: string;
}

/** A managed private network: `nat` (masquerade out) or `isolated` (no way out). */
export interface ManagedNetworkSpec {
  id: string;
  name: string;
  type: 'nat' | 'isolated';
  /** `qm-<name>` */
  bridge: string;
  /** a.b.c.d/p, host bits zero */
  subnet: string;
  /** The host's address on the bridge (the subnet's first). */
  gateway: string;
  /** The DHCP pool; null: dnsmasq serves DNS only. */
  dhcp: { start: string; end: string } | null;
  hosts: readonly NetworkHost[];
}

/** An existing host bridge VMs are attached to; nothing on the host is changed for it. */
export interface BridgeNetworkSpec {
  id: string;
  name: string;
  type: 'bridge';
  bridge: string;
}

export type HostNetworkSpec = ManagedNetworkSpec | BridgeNetworkSpec;

/** A port forward into a managed network: DNAT of hostAddress:hostPort to guestIp:guestPort. */
export interface DnatForward {
  id: string;
  protocol: 'tcp' | 'udp';
  /** 127.0.0.1 (connections from this host only) or 0.0.0.0 (every address of the host). */
  hostAddress: string;
  hostPort: number;
  guestIp: string;
  guestPort: number;
  /** The managed network's bridge the guest is on. */
  bridge: string;
}

/** A dnsmasq lease (read from its lease file; bounded and validated: the guest chose the hostname). */
export interface HostLease {
  mac: string;
  ip: string;
  hostname: string | null;
  /** ISO-8601, or null for an infinite lease. */
  expiresAt: string | null;
}

export interface HostNetworks {
  /** Whether managed and bridge networks can be used here (root, iproute2, nft, dnsmasq), and why not. */
  availability(): { available: boolean; reason: string | null };
  /** The IPv4 subnets this host already uses (its addresses and routes), the `qm-` bridges excluded. */
  hostSubnets(): Promise<string[]>;
  /** True when `name` is an existing Linux bridge (not a `qm-` one). */
  isBridge(name: string): Promise<boolean>;
  /**
   * Brings a managed network up: the bridge with the gateway address, and its dnsmasq (started,
   * or adopted when one of ours already runs for it). Idempotent. On failure it undoes what this
   * call made and throws NETWORK_SETUP_FAILED.
   */
  up(spec: ManagedNetworkSpec): Promise<void>;
  /** Takes a managed network down: its dnsmasq stopped, its bridge (and taps on it) deleted, its run files removed. What is missing is skipped. */
  down(spec: { id: string; bridge: string }): Promise<void>;
  /** Replaces the fixed addresses of a managed network that is up (dnsmasq re-reads them). */
  setHosts(networkId: string, hosts: readonly NetworkHost[]): Promise<void>;
  /**
   * Replaces the rules of every managed network and every DNAT forward in one `nft -f` (the guest
   * isolation chain is not touched): guests on a managed bridge reach the host only for DHCP and
   * DNS (and answers to what the host opened), `nat` networks are masqueraded out, nothing is
   * forwarded between networks, and each forward is a DNAT (from the host itself too).
   */
  applyRules(networks: readonly ManagedNetworkSpec[], forwards: readonly DnatForward[]): Promise<void>;
  /** The current leases of a managed network (empty when it has none or is down). */
  leases(networkId: string): HostLease[];
  /**
   * At server start: makes the host match the records. Managed networks missing pieces are
   * brought up (a dnsmasq of ours still running is adopted, not restarted); `qm-` bridges of no
   * network, taps not in `keepTaps` and dnsmasqs of no network are removed; a kept tap (of a VM
   * still running) is put back on its bridge (tap → bridge) if it was let go (its bridge was made
   * again); then applyRules.
   */
  reconcile(networks: readonly HostNetworkSpec[], forwards: readonly DnatForward[], keepTaps: ReadonlyMap<string, string>): Promise<void>;
  /** Whether nothing on this host holds address:port for the protocol (a forward may take it). */
  portFree(protocol: 'tcp' | 'udp', address: string, port: number): Promise<boolean>;
  /**
   * At server stop when no VM of this server runs and no managed network exists: removes the
   * `inet qemu_manager` table when nothing of anyone is left in it (no guest uid, no network rule).
   */
  removeTableIfEmpty(): Promise<void>;
}
