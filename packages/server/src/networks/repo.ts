// Networks (issue 11): the rows of networks, vm_nics and vm_forwards (migration 015).
import type { Forward, NetworkType, Nic, NicModel } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

export interface NetworkRow {
  id: string;
  name: string;
  type: NetworkType;
  bridge: string | null;
  subnet: string | null;
  gateway: string | null;
  dhcp_start: string | null;
  dhcp_end: string | null;
  created_at: string | null;
}

export interface NicRow {
  id: string;
  vm_id: string;
  network_id: string;
  slot: number;
  model: NicModel;
  mac: string;
  ip: string | null;
  created_at: string;
}

export interface ForwardRow {
  id: string;
  vm_id: string;
  nic_id: string;
  protocol: 'tcp' | 'udp';
  host_address: '127.0.0.1' | '0.0.0.0';
  host_port: number;
  guest_port: number;
  created_at: string;
}

/** The user-mode guest's address (QEMU's slirp gives the first guest 10.0.2.15). */
export const USER_GUEST_IP = '10.0.2.15';

export function toNic(r: NicRow): Nic {
  return { id: r.id, network: r.network_id, model: r.model, mac: r.mac, ip: r.network_id === 'user' ? USER_GUEST_IP : r.ip, slot: r.slot };
}

export function toForward(r: ForwardRow): Forward {
  return {
    id: r.id,
    nic: r.nic_id,
    protocol: r.protocol,
    hostAddress: r.host_address,
    hostPort: r.host_port,
    guestPort: r.guest_port,
    createdAt: r.created_at,
  };
}

export class NetworkRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      networks: db.prepare<[], NetworkRow>("SELECT * FROM networks ORDER BY CASE WHEN id = 'user' THEN 0 ELSE 1 END, created_at, name"),
      network: db.prepare<[string, string], NetworkRow>('SELECT * FROM networks WHERE id = ? OR name = ?'),
      byBridge: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE bridge = ?'),
      insertNetwork: db.prepare(
        `INSERT INTO networks (id, name, type, bridge, subnet, gateway, dhcp_start, dhcp_end, created_at)
         VALUES (@id, @name, @type, @bridge, @subnet, @gateway, @dhcp_start, @dhcp_end, @created_at)`,
      ),
      deleteNetwork: db.prepare('DELETE FROM networks WHERE id = ?'),
      allNics: db.prepare<[], NicRow>('SELECT * FROM vm_nics ORDER BY vm_id, slot'),
      nicsOf: db.prepare<[string], NicRow>('SELECT * FROM vm_nics WHERE vm_id = ? ORDER BY slot'),
      nicsOn: db.prepare<[string], NicRow>('SELECT * FROM vm_nics WHERE network_id = ? ORDER BY vm_id, slot'),
      nic: db.prepare<[string, string], NicRow>('SELECT * FROM vm_nics WHERE vm_id = ? AND id = ?'),
      insertNic: db.prepare(
        `INSERT INTO vm_nics (id, vm_id, network_id, slot, model, mac, ip, created_at)
         VALUES (@id, @vm_id, @network_id, @slot, @model, @mac, @ip, @created_at)`,
      ),
      updateNic: db.prepare('UPDATE vm_nics SET network_id = @network_id, model = @model, mac = @mac, ip = @ip WHERE id = @id'),
      deleteNic: db.prepare('DELETE FROM vm_nics WHERE id = ?'),
      macs: db.prepare<[string, string], { n: number }>('SELECT (SELECT count(*) FROM vms WHERE mac = ?) + (SELECT count(*) FROM vm_nics WHERE mac = ?) AS n'),
      allForwards: db.prepare<[], ForwardRow>('SELECT * FROM vm_forwards ORDER BY created_at, id'),
      forwardsOf: db.prepare<[string], ForwardRow>('SELECT * FROM vm_forwards WHERE vm_id = ? ORDER BY created_at, id'),
      forward: db.prepare<[string, string], ForwardRow>('SELECT * FROM vm_forwards WHERE vm_id = ? AND id = ?'),
      forwardOnPort: db.prepare<[string, number], ForwardRow>('SELECT * FROM vm_forwards WHERE protocol = ? AND host_port = ?'),
      insertForward: db.prepare(
        `INSERT INTO vm_forwards (id, vm_id, nic_id, protocol, host_address, host_port, guest_port, created_at)
         VALUES (@id, @vm_id, @nic_id, @protocol, @host_address, @host_port, @guest_port, @created_at)`,
      ),
      deleteForward: db.prepare('DELETE FROM vm_forwards WHERE id = ?'),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // --- networks ---
  networks(): NetworkRow[] {
    return this.q.networks.all();
  }

  /** By id or name. */
  network(ref: string): NetworkRow | null {
    return this.q.network.get(ref, ref) ?? null;
  }

  byBridge(bridge: string): NetworkRow | null {
    return this.q.byBridge.get(bridge) ?? null;
  }

  insertNetwork(r: NetworkRow): void {
    this.q.insertNetwork.run(r);
  }

  deleteNetwork(id: string): void {
    this.q.deleteNetwork.run(id);
  }

  // --- NICs ---
  allNics(): NicRow[] {
    return this.q.allNics.all();
  }

  nicsOf(vmId: string): NicRow[] {
    return this.q.nicsOf.all(vmId);
  }

  nicsOn(networkId: string): NicRow[] {
    return this.q.nicsOn.all(networkId);
  }

  nic(vmId: string, nicId: string): NicRow | null {
    return this.q.nic.get(vmId, nicId) ?? null;
  }

  insertNic(r: NicRow): void {
    this.q.insertNic.run(r);
  }

  updateNic(r: Pick<NicRow, 'id' | 'network_id' | 'model' | 'mac' | 'ip'>): void {
    this.q.updateNic.run(r);
  }

  deleteNic(id: string): void {
    this.q.deleteNic.run(id);
  }

  /** A MAC any VM (its v1 `mac`) or NIC has. */
  macTaken(mac: string): boolean {
    const m = mac.toLowerCase();
    return (this.q.macs.get(m, m)?.n ?? 0) > 0;
  }

  // --- forwards ---
  allForwards(): ForwardRow[] {
    return this.q.allForwards.all();
  }

  forwardsOf(vmId: string): ForwardRow[] {
    return this.q.forwardsOf.all(vmId);
  }

  forward(vmId: string, id: string): ForwardRow | null {
    return this.q.forward.get(vmId, id) ?? null;
  }

  forwardOnPort(protocol: 'tcp' | 'udp', port: number): ForwardRow | null {
    return this.q.forwardOnPort.get(protocol, port) ?? null;
  }

  insertForward(r: ForwardRow): void {
    this.q.insertForward.run(r);
  }

  deleteForward(id: string): void {
    this.q.deleteForward.run(id);
  }
}
