// Networks (issue 11): a VM's NICs and port forwards. On a running VM each change goes to the
// runtime first (hot-plug, a live forward) and is recorded only once it worked.
import type { CreateForwardBody, CreateNicBody, Forward, Nic, UpdateNicBody, Vm } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import { AppError } from '../lib/errors.js';
import { randomMac } from '../lib/mac.js';
import { nowIso } from '../lib/time.js';
import type { LaunchNic, UserForward } from '../runtime/port.js';
import type { HostNetworks } from '../runtime/network-port.js';
import { emitVm, requireAllowed, requireVm, type VmContext } from '../vms/context.js';
import type { VmRecord } from '../vms/repo.js';
import { toForward, toNic, type ForwardRow, type NetworkRepo, type NetworkRow, type NicRow } from './repo.js';
import { isManaged, type NetworkService } from './service.js';

/** At most this many NICs a VM (slots 0..7). */
export const MAX_NICS = 8;

/**
 * The lock a NIC or forward change takes: the rule of a live configuration change (like the CD
 * medium): allowed stopped, running or paused, refused while the VM is between states.
 */
const LIVE_OP = 'mountIso' as const;

interface Deps {
  ctx: VmContext;
  repo: NetworkRepo;
  networks: NetworkService;
  host: HostNetworks;
}

export class NicService {
  constructor(private readonly d: Deps) {}

  list(vmId: string): Nic[] {
    requireVm(this.d.ctx, vmId);
    return this.d.repo.nicsOf(vmId).map(toNic);
  }

  /** What the runtime is given at start: every NIC in slot order (422 when a managed network cannot be used here). */
  launchNics(vm: Pick<VmRecord, 'id' | 'name'>): LaunchNic[] {
    const { repo, networks } = this.d;
    const forwards = repo.forwardsOf(vm.id);
    return repo.nicsOf(vm.id).map((nic) => {
      const net = networks.require(nic.network_id);
      if (net.type !== 'user') {
        const a = networks.availability();
        if (!a.available) {
          throw new AppError('NETWORKS_UNAVAILABLE', `The VM ${vm.name} cannot start: its NIC ${nic.slot} is on the ${net.type} network ${net.name}, and managed and bridge networks are not available on this server (${a.reason ?? 'unknown reason'})`);
        }
      }
      return launchNic(nic, net, forwards.filter((f) => f.nic_id === nic.id));
    });
  }

  async create(vmId: string, body: CreateNicBody): Promise<{ nic: Nic; vm: Vm }> {
    const { ctx, repo, networks, host } = this.d;
    return ctx.locks.with(vmId, LIVE_OP, async () => {
      const vm = requireVm(ctx, vmId);
      requireAllowed(vm, LIVE_OP, (status) => `VM is ${status}; try again in a moment`);
      const nics = repo.nicsOf(vmId);
      const used = new Set(nics.map((n) => n.slot));
      const slot = [...Array(MAX_NICS).keys()].find((s) => !used.has(s));
      if (slot === undefined) throw new AppError('LIMIT_EXCEEDED', `A VM has at most ${MAX_NICS} NICs`);
      const mac = body.mac !== undefined ? this.checkMac(body.mac) : this.newMac();
      const net = networks.usable(body.network);
      const live = this.live(vm);
      if (live && !ctx.runtime.attachNic) throw new AppError('VM_NOT_STOPPED', 'This runtime cannot add a NIC to a running VM; stop it first');
      const row: NicRow = { id: crypto.randomUUID(), vm_id: vmId, network_id: net.id, slot, model: body.model ?? 'virtio', mac, ip: networks.allocateIp(net), created_at: nowIso() };
      await networks.serial(async () => {
        networks.require(net.id); // not deleted meanwhile (a delete runs in the same queue)
        // the guest's fixed address is known to the network before the NIC appears
        if (row.ip) await host.setHosts(net.id, [...networks.hostsOf(net.id), { mac: row.mac, ip: row.ip }]);
        try {
          if (live) await ctx.runtime.attachNic!(vmId, launchNic(row, net, []));
          repo.insertNic(row);
        } catch (err) {
          if (row.ip) await host.setHosts(net.id, networks.hostsOf(net.id)).catch(() => undefined);
          throw err;
        }
      });
      this.touch(vmId, row);
      return { nic: toNic(row), vm: emitVm(ctx, vmId) };
    });
  }

  async update(vmId: string, nicId: string, body: UpdateNicBody): Promise<{ nic: Nic; vm: Vm }> {
    const { ctx, repo, networks, host } = this.d;
    return ctx.locks.with(vmId, LIVE_OP, async () => {
      const vm = requireVm(ctx, vmId);
      requireAllowed(vm, LIVE_OP, (status) => `VM is ${status}; try again in a moment`);
      const nic = this.requireNic(vmId, nicId);
      const live = this.live(vm);
      const mac = body.mac !== undefined && body.mac.toLowerCase() !== nic.mac.toLowerCase() ? body.mac : undefined;
      const model = body.model !== undefined && body.model !== nic.model ? body.model : undefined;
      if (live && (mac !== undefined || model !== undefined)) {
        throw new AppError('VM_NOT_STOPPED', `Cannot change the ${mac !== undefined ? 'MAC' : 'model'} of a NIC while the VM is ${vm.status}; stop it first (only its network may change while it runs)`);
      }
      const next: NicRow = { ...nic, model: model ?? nic.model, mac: mac !== undefined ? this.checkMac(mac) : nic.mac };
      let net = networks.require(nic.network_id);
      const moving = body.network !== undefined && networks.require(body.network).id !== nic.network_id;
      if (moving) {
        net = networks.usable(body.network!);
        if (repo.forwardsOf(vmId).some((f) => f.nic_id === nic.id)) {
          throw new AppError('FORWARD_UNSUPPORTED', `NIC ${nic.slot} has port forwards: remove them before moving it to another network`);
        }
        next.network_id = net.id;
        next.ip = networks.allocateIp(net);
        if (live && (!ctx.runtime.attachNic || !ctx.runtime.detachNic)) throw new AppError('VM_NOT_STOPPED', 'This runtime cannot change a running VM\'s NICs; stop it first');
      } else if (mac !== undefined && nic.ip) {
        next.ip = nic.ip; // the same fixed address, for the new MAC
      }
      await networks.serial(async () => {
        networks.require(net.id); // not deleted meanwhile
        if (next.ip && (moving || mac !== undefined)) {
          await host.setHosts(net.id, [...networks.hostsOf(net.id).filter((h) => h.mac !== nic.mac), { mac: next.mac, ip: next.ip }]);
        }
        if (live && moving) {
          await ctx.runtime.detachNic!(vmId, nic.slot);
          try {
            await ctx.runtime.attachNic!(vmId, launchNic(next, net, []));
          } catch (err) {
            // the NIC goes back where it was
            await ctx.runtime.attachNic!(vmId, launchNic(nic, networks.require(nic.network_id), [])).catch(() => undefined);
            throw err;
          }
        }
        repo.updateNic(next);
      }).finally(() => void networks.resync('a NIC changed'));
      this.touch(vmId, next);
      return { nic: toNic(next), vm: emitVm(ctx, vmId) };
    });
  }

  async remove(vmId: string, nicId: string): Promise<Vm> {
    const { ctx, repo, networks } = this.d;
    return ctx.locks.with(vmId, LIVE_OP, async () => {
      const vm = requireVm(ctx, vmId);
      requireAllowed(vm, LIVE_OP, (status) => `VM is ${status}; try again in a moment`);
      const nic = this.requireNic(vmId, nicId);
      if (this.live(vm)) {
        if (!ctx.runtime.detachNic) throw new AppError('VM_NOT_STOPPED', 'This runtime cannot remove a NIC from a running VM; stop it first');
        await ctx.runtime.detachNic(vmId, nic.slot); // its user-mode forwards go with it
      }
      repo.deleteNic(nic.id); // its forwards too (cascade)
      ctx.repo.version++;
      await networks.resync('a NIC was removed');
      return emitVm(ctx, vmId);
    });
  }

  private requireNic(vmId: string, nicId: string): NicRow {
    const nic = this.d.repo.nic(vmId, nicId);
    if (!nic) throw new AppError('NIC_NOT_FOUND', `NIC not found: ${nicId}`);
    return nic;
  }

  private checkMac(text: string): string {
    const mac = text.toLowerCase();
    if (parseInt(mac.slice(0, 2), 16) & 1) throw new AppError('VALIDATION', `mac: ${text} is a multicast address; a NIC needs a unicast one (the first octet even)`);
    if (mac === '00:00:00:00:00:00') throw new AppError('VALIDATION', 'mac: 00:00:00:00:00:00 is not a NIC address');
    if (this.d.repo.macTaken(mac)) throw new AppError('MAC_IN_USE', `The MAC ${mac} is already used by a VM's NIC`);
    return mac;
  }

  private newMac(): string {
    let mac = randomMac(crypto.randomBytes);
    while (this.d.repo.macTaken(mac)) mac = randomMac(crypto.randomBytes);
    return mac;
  }

  private live(vm: Pick<Vm, 'id' | 'status'>): boolean {
    return vm.status !== 'stopped' && this.d.ctx.runtime.process(vm.id) !== null;
  }

  /** The VM's columns follow slot 0 (v1's `mac`, the hardware's nicModel); the VM list cache follows. */
  private touch(vmId: string, nic: NicRow): void {
    if (nic.slot === 0) this.d.ctx.repo.update(vmId, { mac: nic.mac, nic_model: nic.model });
    else this.d.ctx.repo.version++;
  }
}

export function launchNic(nic: NicRow, net: NetworkRow, forwards: readonly ForwardRow[]): LaunchNic {
  const base = { slot: nic.slot, model: nic.model, mac: nic.mac };
  if (net.type === 'user') return { ...base, kind: 'user', forwards: forwards.map(userForward) };
  return { ...base, kind: 'bridge', bridge: net.bridge! };
}

function userForward(f: ForwardRow): UserForward {
  return { protocol: f.protocol, hostAddress: f.host_address, hostPort: f.host_port, guestPort: f.guest_port };
}

export class ForwardService {
  constructor(private readonly d: Deps) {}

  list(vmId: string): Forward[] {
    requireVm(this.d.ctx, vmId);
    return this.d.repo.forwardsOf(vmId).map(toForward);
  }

  async create(vmId: string, body: CreateForwardBody): Promise<Forward> {
    const { ctx, repo, networks, host } = this.d;
    return ctx.locks.with(vmId, LIVE_OP, async () => {
      const vm = requireVm(ctx, vmId);
      requireAllowed(vm, LIVE_OP, (status) => `VM is ${status}; try again in a moment`);
      const nics = repo.nicsOf(vmId);
      let nic: NicRow | undefined;
      if (body.nic !== undefined) {
        nic = nics.find((n) => n.id === body.nic || `nic${n.slot}` === body.nic);
        if (!nic) throw new AppError('NIC_NOT_FOUND', `NIC not found: ${body.nic}`);
      } else {
        nic = nics.find((n) => n.network_id === 'user' || repo.network(n.network_id)?.type === 'nat');
        if (!nic) throw new AppError('FORWARD_UNSUPPORTED', `The VM ${vm.name} has no NIC on the user network or a nat network: a port forward has nowhere to go`);
      }
      const net = networks.require(nic.network_id);
      if (net.type !== 'user' && !(net.type === 'nat' && nic.ip)) {
        const why = net.type === 'nat' ? 'it has no fixed address (the network has no DHCP pool)' : `a ${net.type} network cannot be reached from the host through a forward`;
        throw new AppError('FORWARD_UNSUPPORTED', `A port forward cannot go to NIC ${nic.slot} on the network ${net.name}: ${why}`);
      }
      if (net.type !== 'user') networks.requireAvailable(`a forward into the network ${net.name}`);
      const hostAddress = body.hostAddress ?? '127.0.0.1';
      if (hostAddress === '0.0.0.0' && !ctx.config.authRequired) {
        throw new AppError('VALIDATION', 'hostAddress 0.0.0.0 opens the port to every network this host is on; it is allowed only with authentication on (AUTH=required or a HOST that is not loopback)');
      }
      const other = repo.forwardOnPort(body.protocol, body.hostPort);
      if (other) {
        const owner = ctx.repo.get(other.vm_id);
        throw new AppError('PORT_IN_USE', `${body.protocol} port ${body.hostPort} is already forwarded to the VM ${owner?.name ?? other.vm_id}`);
      }
      const own = ownPorts(ctx);
      if (body.protocol === 'tcp' && own.has(body.hostPort)) throw new AppError('PORT_IN_USE', `tcp port ${body.hostPort} is this server's own (${own.get(body.hostPort)})`);
      if (!(await host.portFree(body.protocol, hostAddress, body.hostPort))) {
        throw new AppError('PORT_IN_USE', `${body.protocol} port ${body.hostPort} on ${hostAddress} is already in use on this host`);
      }
      const row: ForwardRow = {
        id: crypto.randomUUID(),
        vm_id: vmId,
        nic_id: nic.id,
        protocol: body.protocol,
        host_address: hostAddress,
        host_port: body.hostPort,
        guest_port: body.guestPort,
        created_at: nowIso(),
      };
      const live = vm.status !== 'stopped' && ctx.runtime.process(vmId) !== null;
      await networks.serial(async () => {
        if (net.type === 'user') {
          if (live) {
            if (!ctx.runtime.addUserForward) throw new AppError('VM_NOT_STOPPED', 'This runtime cannot add a forward to a running VM; stop it first');
            await ctx.runtime.addUserForward(vmId, nic.slot, userForward(row));
          }
        } else {
          // DNAT rules hold whether the VM runs or not
          const dnat = { id: row.id, protocol: row.protocol, hostAddress, hostPort: row.host_port, guestIp: nic.ip!, guestPort: row.guest_port, bridge: net.bridge! };
          await host.applyRules(networks.managedSpecs(), networks.dnatForwards([dnat]));
        }
        try {
          repo.insertForward(row);
        } catch (err) {
          if (net.type === 'user' && live) await ctx.runtime.removeUserForward?.(vmId, nic.slot, userForward(row)).catch(() => undefined);
          else await networks.sync().catch(() => undefined);
          throw err;
        }
      });
      ctx.repo.version++;
      emitVm(ctx, vmId); // other clients see the forward (the VM page lists them)
      return toForward(row);
    });
  }

  async remove(vmId: string, forwardId: string): Promise<void> {
    const { ctx, repo, networks, host } = this.d;
    return ctx.locks.with(vmId, LIVE_OP, async () => {
      const vm = requireVm(ctx, vmId);
      requireAllowed(vm, LIVE_OP, (status) => `VM is ${status}; try again in a moment`);
      const f = repo.forward(vmId, forwardId);
      if (!f) throw new AppError('FORWARD_NOT_FOUND', `Forward not found: ${forwardId}`);
      const nic = repo.nic(vmId, f.nic_id);
      const net = nic ? repo.network(nic.network_id) : null;
      const live = vm.status !== 'stopped' && ctx.runtime.process(vmId) !== null;
      await networks.serial(async () => {
        if (net?.type === 'user' && nic && live && ctx.runtime.removeUserForward) await ctx.runtime.removeUserForward(vmId, nic.slot, userForward(f));
        if (net && isManaged(net) && host.availability().available) await host.applyRules(networks.managedSpecs(), networks.dnatForwards([], f.id));
        repo.deleteForward(f.id);
      });
      ctx.repo.version++;
      emitVm(ctx, vmId);
    });
  }
}

/** The TCP ports this server listens on itself (PORT, UI_PORT, the VMs' VNC ports with VNC_TCP=1). */
function ownPorts(ctx: VmContext): Map<number, string> {
  const m = new Map<number, string>();
  if (ctx.config.vncTcp) for (const p of ctx.repo.usedPorts()) m.set(p, 'a VM\'s VNC port');
  if (ctx.config.uiPort !== null) m.set(ctx.config.uiPort, 'UI_PORT');
  if (ctx.config.port !== 0) m.set(ctx.config.port, 'PORT');
  return m;
}
