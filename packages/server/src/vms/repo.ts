import type { BootDevice, Nic, NicModel, OsType, Vm, VmAddress, VmDisk, VmDiskBus, VmHint, VmMachine, VmStatus } from '@qemu-manager/contract';
import type Database from 'better-sqlite3';
import crypto from 'node:crypto';
import { randomMac } from '../lib/mac.js';
import { AppError } from '../lib/errors.js';
import { toNic, type NicRow } from '../networks/repo.js'; // networks (issue 11)
import type { Db } from '../store/sqlite.js';

interface VmRow {
  id: string;
  name: string;
  cpus: number;
  memory: number;
  status: VmStatus;
  vnc_port: number;
  iso: string | null;
  mac: string;
  pid: number | null;
  pid_start: string | null;
  started_at: string | null;
  last_command: string | null;
  created_at: string;
  // autostart (issue 15)
  autostart_enabled: number;
  autostart_order: number;
  autostart_delay_s: number;
  // hardware options (issue 12)
  firmware: 'bios' | 'uefi';
  secure_boot: number;
  tpm: number;
  // hardware options and templates (issue 12, migration 010)
  machine: VmMachine;
  disk_bus: VmDiskBus;
  nic_model: NicModel;
  boot_order: string;
  os_type: OsType;
  drivers_iso: string | null;
  is_template: number;
  // cloud-init (issue 12): whether a vm_cloud_init row exists (computed by the queries)
  has_cloud_init: number;
}

interface VmDiskRow {
  vm_id: string;
  path: string;
  format: string;
  attached_at: string;
  disk_id: string | null;
}

/** A VM as stored, plus the runtime fields only the server uses. */
export interface VmRecord extends Vm {
  pidStart: string | null;
}

/** The columns of a VM row; `has_cloud_init` says whether it has a cloud-init config (issue 12). */
const VM_SQL = 'SELECT vms.*, EXISTS (SELECT 1 FROM vm_cloud_init c WHERE c.vm_id = vms.id) AS has_cloud_init FROM vms';

const DISKS_SQL = `SELECT vd.vm_id, vd.path, vd.format, vd.attached_at, d.id AS disk_id
  FROM vm_disks vd LEFT JOIN disks d ON d.path = vd.path`;

function toDisk(r: VmDiskRow): VmDisk {
  return { path: r.path, attachedAt: r.attached_at, format: r.format, diskId: r.disk_id };
}

function toVm(r: VmRow, disks: VmDisk[], agentConnected: (id: string) => boolean, hint: (id: string) => VmHint | null, nics: Nic[] = []): VmRecord {
  return {
    id: r.id,
    name: r.name,
    cpus: r.cpus,
    memory: r.memory,
    status: r.status,
    vnc_port: r.vnc_port,
    disks,
    iso: r.iso,
    createdAt: r.created_at,
    mac: r.mac,
    lastCommand: r.last_command,
    startedAt: r.started_at,
    pid: r.pid,
    pidStart: r.pid_start,
    autostart: { enabled: r.autostart_enabled === 1, order: r.autostart_order, delayS: r.autostart_delay_s }, // autostart (issue 15)
    firmware: r.firmware, // hardware options (issue 12)
    secureBoot: r.secure_boot === 1,
    tpm: r.tpm === 1,
    machine: r.machine,
    diskBus: r.disk_bus,
    nicModel: r.nic_model,
    bootOrder: parseBootOrder(r.boot_order),
    osType: r.os_type,
    driversIso: r.drivers_iso,
    template: r.is_template === 1,
    agent: { connected: agentConnected(r.id) }, // the guest agent (issue 14), from the runtime
    cloudInit: r.has_cloud_init === 1, // cloud-init (issue 12)
    hint: hint(r.id), // the stuck-boot hint (issue 14), from the sampler
    nics, // networks (issue 11): from vm_nics, in slot order
    addresses: [], // networks (issue 11): filled by the repo's `addresses` (set by the app)
  };
}

const BOOT_DEVICES: readonly BootDevice[] = ['disk', 'cdrom', 'network'];

/** The stored boot order (a JSON array written by the server); anything else reads as the default. */
export function parseBootOrder(text: string): BootDevice[] {
  try {
    const v: unknown = JSON.parse(text);
    if (Array.isArray(v) && v.length > 0 && v.every((d) => BOOT_DEVICES.includes(d as BootDevice)) && new Set(v).size === v.length) {
      return v as BootDevice[];
    }
  } catch {
    // fall through to the default
  }
  return ['disk', 'cdrom'];
}

export class VmRepo {
  private readonly q;
  /** Bumped by every write, so readers can cache what they derive from the table. */
  version = 0;
  /** The guest agent (issue 14): whether a VM's agent answers, as the runtime knows it (set by the app). */
  agentConnected: (id: string) => boolean = () => false;
  /** The stuck-boot hint (issue 14) of a running VM, as the sampler sees it (set by the app). */
  hint: (id: string) => VmHint | null = () => null;
  private readonly updates = new Map<string, Database.Statement>();
  /** Networks (issue 11): a VM's addresses as the server knows them (set by the app). */
  addresses: (vm: VmRecord) => VmAddress[] = () => [];
  /**
   * Networks (issue 11): the network (id or name) a new NIC goes on, checked, and its fixed
   * address (a managed network with DHCP); `taken` are addresses planned in the same insert. Set
   * by the app; by default only `user` exists.
   */
  planNic: (network: string, taken: ReadonlySet<string>) => { networkId: string; ip: string | null } = (network) => {
    if (network !== 'user') throw new AppError('NETWORK_NOT_FOUND', `Network not found: ${network}`);
    return { networkId: 'user', ip: null };
  };

  constructor(private readonly db: Db) {
    this.q = {
      all: db.prepare<[], VmRow>(`${VM_SQL} ORDER BY created_at, name`),
      allDisks: db.prepare<[], VmDiskRow>(`${DISKS_SQL} ORDER BY vd.vm_id, vd.position`),
      one: db.prepare<[string], VmRow>(`${VM_SQL} WHERE id = ?`),
      disksOf: db.prepare<[string], VmDiskRow>(`${DISKS_SQL} WHERE vd.vm_id = ? ORDER BY vd.position`),
      byName: db.prepare<[string], { id: string }>('SELECT id FROM vms WHERE name = ?'),
      ports: db.prepare<[], number>('SELECT vnc_port FROM vms'),
      // networks (issue 11): a MAC of any NIC is taken too
      macs: db.prepare<[string, string], { n: number }>('SELECT (SELECT count(*) FROM vms WHERE lower(mac) = ?) + (SELECT count(*) FROM vm_nics WHERE lower(mac) = ?) AS n'),
      allNics: db.prepare<[], NicRow>('SELECT * FROM vm_nics ORDER BY vm_id, slot'),
      nicsOf: db.prepare<[string], NicRow>('SELECT * FROM vm_nics WHERE vm_id = ? ORDER BY slot'),
      insertNic: db.prepare(
        `INSERT INTO vm_nics (id, vm_id, network_id, slot, model, mac, ip, created_at)
         VALUES (@id, @vm_id, @network_id, @slot, @model, @mac, @ip, @created_at)`,
      ),
      slot0Model: db.prepare('UPDATE vm_nics SET model = ? WHERE vm_id = ? AND slot = 0'),
      slot0Mac: db.prepare('UPDATE vm_nics SET mac = ? WHERE vm_id = ? AND slot = 0'),
      memory: db.prepare<[string], { total: number }>('SELECT coalesce(sum(memory), 0) AS total FROM vms WHERE id != ?'),
      insert: db.prepare(
        `INSERT INTO vms (id, name, cpus, memory, status, vnc_port, mac, created_at, firmware, secure_boot, tpm,
           machine, disk_bus, nic_model, boot_order, os_type, drivers_iso)
         VALUES (@id, @name, @cpus, @memory, 'stopped', @vnc_port, @mac, @created_at, @firmware, @secure_boot, @tpm,
           @machine, @disk_bus, @nic_model, @boot_order, @os_type, @drivers_iso)`,
      ),
      del: db.prepare('DELETE FROM vms WHERE id = ?'),
      diskOwner: db.prepare<[string], { vm_id: string }>('SELECT vm_id FROM vm_disks WHERE path = ?'),
      attach: db.prepare(
        `INSERT INTO vm_disks (path, vm_id, format, position, attached_at)
         VALUES (?, ?, ?, (SELECT coalesce(max(position), -1) + 1 FROM vm_disks WHERE vm_id = ?), ?)`,
      ),
      detach: db.prepare('DELETE FROM vm_disks WHERE vm_id = ? AND path = ?'),
    };
    this.q.ports.pluck();
  }

  list(): VmRecord[] {
    const byVm = new Map<string, VmDisk[]>();
    for (const r of this.q.allDisks.all()) {
      const list = byVm.get(r.vm_id);
      if (list) list.push(toDisk(r));
      else byVm.set(r.vm_id, [toDisk(r)]);
    }
    // networks (issue 11): every VM's NICs in one query
    const nicsByVm = new Map<string, Nic[]>();
    for (const n of this.q.allNics.all()) {
      const list = nicsByVm.get(n.vm_id);
      if (list) list.push(toNic(n));
      else nicsByVm.set(n.vm_id, [toNic(n)]);
    }
    return this.q.all.all().map((r) => this.withAddresses(toVm(r, byVm.get(r.id) ?? [], this.agentConnected, this.hint, nicsByVm.get(r.id) ?? [])));
  }

  get(id: string): VmRecord | null {
    const r = this.q.one.get(id);
    return r ? this.withAddresses(toVm(r, this.q.disksOf.all(id).map(toDisk), this.agentConnected, this.hint, this.q.nicsOf.all(id).map(toNic))) : null;
  }

  private withAddresses(vm: VmRecord): VmRecord {
    vm.addresses = this.addresses(vm);
    return vm;
  }

  /** The memory (MiB) of all defined VMs together, but `except`'s. One query: health asks on every call. */
  memoryTotal(except = ''): number {
    return this.q.memory.get(except)!.total;
  }

  nameTaken(name: string): boolean {
    return this.q.byName.get(name) !== undefined;
  }

  usedPorts(): Set<number> {
    return new Set(this.q.ports.all());
  }

  macTaken(mac: string): boolean {
    const m = mac.toLowerCase();
    return (this.q.macs.get(m, m)?.n ?? 0) > 0;
  }

  insert(v: {
    id: string;
    name: string;
    cpus: number;
    memory: number;
    vnc_port: number;
    mac: string;
    created_at: string;
    // hardware options (issue 12): bios, no Secure Boot, no TPM when omitted
    firmware?: 'bios' | 'uefi';
    secure_boot?: number;
    tpm?: number;
    // hardware options (issue 12, migration 010): the defaults when omitted
    machine?: VmMachine;
    disk_bus?: VmDiskBus;
    nic_model?: NicModel;
    boot_order?: string;
    os_type?: OsType;
    drivers_iso?: string | null;
    // networks (issue 11): the first NIC's network (id or name; default user), or every NIC (a
    // clone: the same networks and models, each with a new MAC; slot 0 gets `mac`)
    network?: string;
    nics?: ReadonlyArray<{ network: string; model: NicModel }>;
  }): void {
    const { network, nics, ...row } = v;
    const columns = {
      firmware: 'bios' as const,
      secure_boot: 0,
      tpm: 0,
      machine: 'q35' as const,
      disk_bus: 'virtio' as const,
      nic_model: 'virtio' as NicModel,
      boot_order: '["disk","cdrom"]',
      os_type: 'other' as const,
      drivers_iso: null,
      ...row,
    };
    const wanted = nics ?? [{ network: network ?? 'user', model: columns.nic_model }];
    // the VM and its NICs appear together, or not at all
    this.db.transaction(() => {
      this.version++;
      this.q.insert.run(columns);
      const ips = new Set<string>();
      wanted.forEach((n, slot) => {
        const planned = this.planNic(n.network, ips);
        if (planned.ip) ips.add(planned.ip);
        let mac = slot === 0 ? v.mac : randomMac(crypto.randomBytes);
        while (slot > 0 && this.macTaken(mac)) mac = randomMac(crypto.randomBytes);
        this.q.insertNic.run({ id: crypto.randomUUID(), vm_id: v.id, network_id: planned.networkId, slot, model: n.model, mac, ip: planned.ip, created_at: v.created_at });
      });
    })();
  }

  /** Updates the given columns of one VM. Column names come from this module only, never from input. */
  update(id: string, fields: Partial<Omit<VmRow, 'id' | 'created_at'>>): void {
    this.version++;
    const keys = Object.keys(fields) as (keyof typeof fields)[];
    if (keys.length === 0) return;
    const sql = `UPDATE vms SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`;
    let stmt = this.updates.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.updates.set(sql, stmt);
    }
    stmt.run({ ...fields, id });
    // networks (issue 11): vms.mac and vms.nic_model are the first NIC's
    if (fields.nic_model !== undefined) this.q.slot0Model.run(fields.nic_model, id);
    if (fields.mac !== undefined) this.q.slot0Mac.run(fields.mac, id);
  }

  delete(id: string): void {
    this.version++;
    this.q.del.run(id);
  }

  diskOwner(path: string): string | null {
    return this.q.diskOwner.get(path)?.vm_id ?? null;
  }

  attachDisk(vmId: string, path: string, format: string, at: string): void {
    this.version++;
    this.q.attach.run(path, vmId, format, vmId, at);
  }

  detachDisk(vmId: string, path: string): boolean {
    this.version++;
    return this.q.detach.run(vmId, path).changes > 0;
  }
}
