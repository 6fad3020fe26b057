/**
 * Networks, NICs and port forwards (issue 11): `network ls|show|create|rm`, `vm nic ls|add|set|rm`,
 * `vm forward ls|add|rm`. Networks, NICs and forwards are named by id or by a handier name (a
 * network's name; a NIC's slot, `nic<slot>` or MAC; a forward's host port).
 */
import type {
  CreateForwardBody,
  CreateNetworkBody,
  CreateNicBody,
  Forward,
  ForwardList,
  MessageBody,
  Network,
  NetworkList,
  Nic,
  NicList,
  UpdateNicBody,
  Vm,
} from '@qemu-manager/contract';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type Api, enc } from './api.js';
import { table } from './format.js';

/** What program.ts lends these commands. */
export interface NetKit {
  ctx: (cmd: Command) => { api: Api; json: boolean };
  print: (json: boolean, data: unknown, human: () => string) => void;
  vmOf: (api: Api, ref: string) => Promise<Vm>;
}

const usage = (message: string) => new CommanderError(2, 'qemu-manager.usage', `error: ${message}\n`);

function port(v: string): number {
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new InvalidArgumentError(`a port from 1 to 65535 is needed, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** `a.b.c.d-e.f.g.h`: a DHCP pool. */
function range(v: string): { start: string; end: string } {
  const m = /^([0-9.]{7,15})-([0-9.]{7,15})$/.exec(v);
  if (!m) throw new InvalidArgumentError(`a range START-END of IPv4 addresses is needed, got ${JSON.stringify(v)}`);
  return { start: m[1]!, end: m[2]! };
}

/** An answer that may be enveloped (`{ network: … }`) or bare. */
function unwrap<T>(data: unknown, key: string): T {
  return (data !== null && typeof data === 'object' && key in data ? (data as Record<string, unknown>)[key] : data) as T;
}

/** A DELETE: the API's message, or (an empty answer) `fallback`. */
async function del(api: Api, p: string, fallback: string): Promise<MessageBody> {
  const res = await api.fetch('DELETE', p);
  const text = await res.text();
  if (text.trim() === '') return { message: fallback };
  try {
    const body = JSON.parse(text) as Partial<MessageBody>;
    return { message: typeof body.message === 'string' ? body.message : fallback };
  } catch {
    return { message: fallback };
  }
}

const dhcpText = (n: Network) => (n.dhcp ? `${n.dhcp.start}-${n.dhcp.end}` : null);

async function networks(api: Api): Promise<NetworkList> {
  return api.get<NetworkList>('/networks');
}

/** A network by id or name (a usage error names the choices when there is none). */
async function networkOf(api: Api, ref: string): Promise<Network> {
  const { networks: list } = await networks(api);
  const n = list.find((x) => x.id === ref) ?? list.find((x) => x.name === ref);
  if (!n) throw usage(`no network ${JSON.stringify(ref)} (there are: ${list.map((x) => x.name).join(', ')})`);
  return n;
}

/** A NIC of the VM by id, slot number, `nic<slot>` or MAC. */
function nicOf(v: Vm, ref: string): Nic {
  const slot = /^(?:nic)?([0-7])$/.exec(ref);
  const nic =
    v.nics.find((n) => n.id === ref) ??
    (slot ? v.nics.find((n) => n.slot === Number(slot[1])) : undefined) ??
    v.nics.find((n) => n.mac.toLowerCase() === ref.toLowerCase());
  if (!nic) throw usage(`${v.name} has no NIC ${JSON.stringify(ref)} (give an id, a slot or a MAC: qemu-manager vm nic ls ${v.name})`);
  return nic;
}

export function registerNetworks(program: Command, vm: Command, kit: NetKit): void {
  const { ctx, print } = kit;

  // ---- network
  const network = program.command('network').description('networks: user-mode NAT, managed nat/isolated bridges, host bridges');
  network
    .command('ls')
    .description('list networks (leases and VMs counted)')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await networks(api);
      print(json, data, () => {
        const rows = table(
          ['NAME', 'TYPE', 'BRIDGE', 'SUBNET', 'GATEWAY', 'DHCP', 'LEASES', 'VMS', 'ID'],
          data.networks.map((n) => [n.name, n.type, n.bridge, n.subnet, n.gateway, dhcpText(n), n.leases.length, n.vms.length, n.id]),
        );
        return data.managed.available ? rows : `${rows}(only user-mode networks here: ${data.managed.reason ?? 'managed networks are not available'})\n`;
      });
    });
  network
    .command('show <network>')
    .description('one network (name or id) and its DHCP leases')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const n = await networkOf(api, ref);
      print(json, { network: n }, () =>
        table(
          ['FIELD', 'VALUE'],
          [
            ['name', n.name],
            ['id', n.id],
            ['type', n.type],
            ['bridge', n.bridge],
            ['subnet', n.subnet],
            ['gateway', n.gateway],
            ['dhcp', dhcpText(n)],
            ['vms', n.vms.join(', ')],
            ['created', n.createdAt],
          ],
        ) + (n.leases.length > 0 ? '\n' + table(['MAC', 'IP', 'HOSTNAME', 'EXPIRES'], n.leases.map((l) => [l.mac, l.ip, l.hostname, l.expiresAt ?? 'never'])) : ''),
      );
    });
  network
    .command('create <name>')
    .description('create a network: nat or isolated (a bridge qm-<name> with DHCP) or bridge (an existing host bridge)')
    .addOption(new Option('--type <type>', 'network type').choices(['nat', 'isolated', 'bridge']).makeOptionMandatory())
    .option('--subnet <cidr>', 'nat/isolated: the subnet (default: the first free 192.168.N.0/24 from N = 100)')
    .option('--dhcp <start-end>', 'nat/isolated: the DHCP pool (default .2 to the last but one)', range)
    .option('--no-dhcp', 'nat/isolated: no DHCP (NICs get no fixed address; no forwards to them)')
    .option('--bridge <name>', 'bridge: the host bridge to attach to (it must exist)')
    .action(async (name: string, o: { type: CreateNetworkBody['type']; subnet?: string; dhcp?: { start: string; end: string } | false; bridge?: string }, cmd: Command) => {
      if (o.type === 'bridge' && o.bridge === undefined) throw usage('--type bridge needs --bridge <name>');
      if (o.type !== 'bridge' && o.bridge !== undefined) throw usage('--bridge goes with --type bridge');
      if (o.type === 'bridge' && (o.subnet !== undefined || o.dhcp !== undefined)) throw usage('a bridge network takes no --subnet or --dhcp (the LAN has its own)');
      const { api, json } = ctx(cmd);
      const body: CreateNetworkBody = {
        name,
        type: o.type,
        ...(o.subnet !== undefined ? { subnet: o.subnet } : {}),
        ...(o.dhcp === false ? { dhcp: null } : o.dhcp !== undefined ? { dhcp: o.dhcp } : {}),
        ...(o.bridge !== undefined ? { bridge: o.bridge } : {}),
      };
      const n = unwrap<Network>(await api.json<unknown>('POST', '/networks', body), 'network');
      print(json, { network: n }, () => `created network ${n.name} (${n.type}${n.bridge ? `, bridge ${n.bridge}` : ''}${n.subnet ? `, ${n.subnet}` : ''}) ${n.id}\n`);
    });
  network
    .command('rm <network>')
    .description('delete a network (refused while a VM has a NIC on it); what it set up on the host goes')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const n = await networkOf(api, ref);
      const data = await del(api, `/networks/${enc(n.id)}`, `network ${n.name} deleted`);
      print(json, data, () => `${data.message}\n`);
    });

  // ---- vm nic
  const nic = vm.command('nic').description('a VM\'s network cards (hot-plugged while it runs)');
  const nicRows = async (api: Api, nics: Nic[]) => {
    const { networks: list } = await networks(api);
    const name = (id: string) => list.find((n) => n.id === id)?.name ?? id;
    return table(['SLOT', 'NETWORK', 'MODEL', 'MAC', 'IP', 'ID'], nics.map((n) => [n.slot, name(n.network), n.model, n.mac, n.ip, n.id]));
  };
  nic
    .command('ls <vm>')
    .description('list a VM\'s NICs')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const data = await api.get<NicList>(`/vms/${enc(v.id)}/nics`);
      const human = await nicRows(api, data.nics);
      print(json, data, () => human);
    });
  nic
    .command('add <vm>')
    .description('add a NIC (hot-plugged into a running VM)')
    .requiredOption('--network <network>', 'network name or id (user for user-mode NAT)')
    .addOption(new Option('--model <model>', 'NIC model (default virtio)').choices(['virtio', 'e1000e', 'rtl8139']))
    .option('--mac <mac>', 'MAC address (default: a new random 52:54:00:xx:xx:xx)')
    .action(async (ref: string, o: { network: string; model?: Nic['model']; mac?: string }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const body: CreateNicBody = { network: o.network, ...(o.model ? { model: o.model } : {}), ...(o.mac ? { mac: o.mac } : {}) };
      const n = unwrap<Nic>(await api.json<unknown>('POST', `/vms/${enc(v.id)}/nics`, body), 'nic');
      print(json, { nic: n }, () => `${v.name}: NIC ${n.slot} on ${o.network} (${n.model}, ${n.mac}${n.ip ? `, ${n.ip}` : ''}) ${n.id}\n`);
    });
  nic
    .command('set <vm> <nic>')
    .description('change a NIC (id, slot or MAC): a running VM may only move it to another network')
    .option('--network <network>', 'network name or id')
    .addOption(new Option('--model <model>', 'NIC model').choices(['virtio', 'e1000e', 'rtl8139']))
    .option('--mac <mac>', 'MAC address')
    .action(async (ref: string, nicRef: string, o: { network?: string; model?: Nic['model']; mac?: string }, cmd: Command) => {
      if (o.network === undefined && o.model === undefined && o.mac === undefined) throw usage('give --network, --model and/or --mac');
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const target = nicOf(v, nicRef);
      const body: UpdateNicBody = { ...(o.network ? { network: o.network } : {}), ...(o.model ? { model: o.model } : {}), ...(o.mac ? { mac: o.mac } : {}) };
      const n = unwrap<Nic>(await api.json<unknown>('PATCH', `/vms/${enc(v.id)}/nics/${enc(target.id)}`, body), 'nic');
      print(json, { nic: n }, () => `${v.name}: NIC ${n.slot} (${n.model}, ${n.mac}${n.ip ? `, ${n.ip}` : ''})\n`);
    });
  nic
    .command('rm <vm> <nic>')
    .description('remove a NIC (id, slot or MAC; unplugged from a running VM) and its forwards')
    .action(async (ref: string, nicRef: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const target = nicOf(v, nicRef);
      const data = await del(api, `/vms/${enc(v.id)}/nics/${enc(target.id)}`, `${v.name}: NIC ${target.slot} removed`);
      print(json, data, () => `${data.message}\n`);
    });

  // ---- vm forward
  const forward = vm.command('forward').description('a VM\'s port forwards (host port -> guest port; applied live)');
  forward
    .command('ls <vm>')
    .description('list a VM\'s port forwards')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const data = await api.get<ForwardList>(`/vms/${enc(v.id)}/forwards`);
      const slot = (id: string) => v.nics.find((n) => n.id === id)?.slot ?? id;
      print(json, data, () =>
        table(
          ['PROTO', 'HOST', 'GUEST', 'NIC', 'ID'],
          data.forwards.map((f) => [f.protocol, `${f.hostAddress}:${f.hostPort}`, f.guestPort, slot(f.nic), f.id]),
        ),
      );
    });
  forward
    .command('add <vm> <hostPort> <guestPort>')
    .description('forward a host port to a guest port (a user NIC or a nat network)')
    .addOption(new Option('--protocol <protocol>', 'tcp or udp').choices(['tcp', 'udp']).default('tcp'))
    .addOption(new Option('--host-address <address>', 'listen address (0.0.0.0 only with authentication on)').choices(['127.0.0.1', '0.0.0.0']))
    .option('--nic <nic>', 'the NIC (id, slot or MAC; default: the first on a user or nat network)')
    .action(async (ref: string, hostPortText: string, guestPortText: string, o: { protocol: Forward['protocol']; hostAddress?: '127.0.0.1' | '0.0.0.0'; nic?: string }, cmd: Command) => {
      let hostPort: number;
      let guestPort: number;
      try {
        hostPort = port(hostPortText);
        guestPort = port(guestPortText);
      } catch (err) {
        throw usage((err as Error).message);
      }
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const body: CreateForwardBody = {
        protocol: o.protocol,
        hostPort,
        guestPort,
        ...(o.hostAddress ? { hostAddress: o.hostAddress } : {}),
        ...(o.nic !== undefined ? { nic: nicOf(v, o.nic).id } : {}),
      };
      const f = unwrap<Forward>(await api.json<unknown>('POST', `/vms/${enc(v.id)}/forwards`, body), 'forward');
      const ssh = f.protocol === 'tcp' && f.guestPort === 22 ? `\nssh -p ${f.hostPort} <user>@${f.hostAddress === '0.0.0.0' ? '<this host>' : f.hostAddress}` : '';
      print(json, { forward: f }, () => `${v.name}: ${f.protocol} ${f.hostAddress}:${f.hostPort} -> ${f.guestPort} (${f.id})${ssh}\n`);
    });
  forward
    .command('rm <vm> <forward>')
    .description('remove a port forward (id, or its host port)')
    .action(async (ref: string, fwdRef: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const { forwards } = await api.get<ForwardList>(`/vms/${enc(v.id)}/forwards`);
      const byPort = /^[0-9]{1,5}$/.test(fwdRef) ? forwards.filter((f) => f.hostPort === Number(fwdRef)) : [];
      if (byPort.length > 1) throw usage(`host port ${fwdRef} has a tcp and a udp forward: give the id (qemu-manager vm forward ls ${v.name})`);
      const f = forwards.find((x) => x.id === fwdRef) ?? byPort[0];
      if (!f) throw usage(`${v.name} has no forward ${JSON.stringify(fwdRef)} (qemu-manager vm forward ls ${v.name})`);
      const data = await del(api, `/vms/${enc(v.id)}/forwards/${enc(f.id)}`, `${v.name}: forward ${f.hostAddress}:${f.hostPort} removed`);
      print(json, data, () => `${data.message}\n`);
    });
}

/** The VM's NICs and addresses, as `vm show` rows. */
export function nicShowRows(v: Vm): (string | number | null)[][] {
  return [
    ...(v.nics ?? []).map((n) => [`nic${n.slot}`, `${n.model} ${n.mac} on ${n.network}${n.ip ? ` (${n.ip})` : ''}`]),
    ...(v.addresses ?? []).map((a) => ['address', `${a.ip} (${a.source}${a.mac ? `, ${a.mac}` : ''})`]),
  ];
}
