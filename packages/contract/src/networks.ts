import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';

/**
 * Networks (extension, issue 11). `user` is QEMU's user-mode NAT, per VM, always present (its id
 * and name are both `user`). `nat` and `isolated` are managed private networks: a Linux bridge
 * `qm-<name>` the server creates, a subnet, a dnsmasq for DHCP and DNS, nftables rules in the
 * table `inet qemu_manager` (masquerade out for `nat`; no way out for `isolated`). `bridge`
 * attaches to an existing host bridge (the host's network is not touched).
 */
export const NetworkType = Type.Union([Type.Literal('user'), Type.Literal('nat'), Type.Literal('isolated'), Type.Literal('bridge')], {
  description: 'user (QEMU user-mode NAT, per VM) | nat (managed bridge + DHCP + masquerade) | isolated (managed, no way out) | bridge (an existing host bridge)',
});
export type NetworkType = Static<typeof NetworkType>;

/** Names of managed networks: the bridge is `qm-<name>` (at most 15 characters), so at most 12. */
export const NETWORK_NAME_PATTERN = '^[a-z][a-z0-9-]{0,11}$';
/** A host bridge's name (an interface name: no slash, no space, no quote; at most 15). */
export const BRIDGE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$';
const IPV4 = '^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$';
const IPV4_CIDR = '^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/(1[6-9]|2[0-9])$';
export const Ipv4 = Type.String({ pattern: IPV4, maxLength: 15 });
/** An IPv4 subnet from /16 to /29 (the network's address; host bits must be zero). */
export const Ipv4Cidr = Type.String({ pattern: IPV4_CIDR, maxLength: 18, description: 'IPv4 subnet a.b.c.d/16..29, host bits zero' });

export const DhcpRange = Type.Object(
  { start: Ipv4, end: Ipv4 },
  { additionalProperties: false, description: 'The DHCP pool (inside the subnet, not the gateway); every NIC on the network is given a fixed address from it' },
);
export type DhcpRange = Static<typeof DhcpRange>;

export const Lease = Type.Object(
  {
    mac: Type.String(),
    ip: Type.String(),
    hostname: Type.Union([Type.String(), Type.Null()], { description: 'What the guest sent (untrusted, at most 63 characters)' }),
    expiresAt: Type.Union([Timestamp, Type.Null()], { description: 'null: never (an infinite lease)' }),
  },
  { additionalProperties: false },
);
export type Lease = Static<typeof Lease>;

export const Network = Type.Object(
  {
    id: Type.String({ description: 'A UUID, or `user` for the user-mode network' }),
    name: Type.String(),
    type: NetworkType,
    bridge: Type.Union([Type.String(), Type.Null()], { description: 'The Linux bridge (qm-<name>, or the host bridge); null for user' }),
    subnet: Type.Union([Type.String(), Type.Null()], { description: 'CIDR; user: 10.0.2.0/24; bridge: null (the LAN\'s)' }),
    gateway: Type.Union([Type.String(), Type.Null()], { description: 'The host\'s address on the network (nat/isolated), 10.0.2.2 for user, null for bridge' }),
    dhcp: Type.Union([DhcpRange, Type.Null()], { description: 'null: no DHCP from the server (bridge networks: the LAN\'s own)' }),
    leases: Type.Array(Lease, { description: 'From dnsmasq (nat/isolated); empty for user and bridge' }),
    vms: Type.Array(Id, { description: 'VMs with a NIC on this network' }),
    createdAt: Type.Union([Timestamp, Type.Null()], { description: 'null for the built-in user network' }),
  },
  { additionalProperties: false, $id: 'Network' },
);
export type Network = Static<typeof Network>;

export const NetworkList = Type.Object(
  {
    networks: Type.Array(Network),
    managed: Type.Object(
      {
        available: Type.Boolean({ description: 'nat, isolated and bridge networks can be created and used here' }),
        reason: Type.Union([Type.String(), Type.Null()], { description: 'Why not (e.g. the server does not run as root); null when available' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type NetworkList = Static<typeof NetworkList>;

/**
 * `POST /api/networks` (admin). nat/isolated: `subnet` defaults to the first free 192.168.N.0/24
 * from N = 100; the gateway is the subnet's first address; `dhcp` defaults to .2 – the last but
 * one (null: no DHCP; then NICs get no fixed address and forwards to them are refused). bridge:
 * `bridge` names an existing host bridge; subnet and dhcp are not allowed.
 */
export const CreateNetworkBody = Type.Object(
  {
    name: Type.String({ pattern: NETWORK_NAME_PATTERN, minLength: 1, maxLength: 12 }),
    type: Type.Union([Type.Literal('nat'), Type.Literal('isolated'), Type.Literal('bridge')]),
    subnet: Type.Optional(Ipv4Cidr),
    dhcp: Type.Optional(Type.Union([DhcpRange, Type.Null()])),
    bridge: Type.Optional(Type.String({ pattern: BRIDGE_NAME_PATTERN, minLength: 1, maxLength: 15 })),
  },
  { additionalProperties: false },
);
export type CreateNetworkBody = Static<typeof CreateNetworkBody>;

export const NetworkIdParams = Type.Object({ network_id: PathId }, { additionalProperties: false });
export type NetworkIdParams = Static<typeof NetworkIdParams>;

export const NicModel = Type.Union([Type.Literal('virtio'), Type.Literal('e1000e'), Type.Literal('rtl8139')], { description: 'Model of the VM\'s NIC: virtio (the default) | e1000e | rtl8139' });
export type NicModel = Static<typeof NicModel>;

/** A VM's NIC. `slot` is stable for the NIC's life: QEMU's netdev `net<slot>`, device `nic<slot>`. */
export const Nic = Type.Object(
  {
    id: Id,
    network: Type.String({ description: 'Network id (`user` for user-mode)' }),
    model: NicModel,
    mac: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()], {
      description: 'The fixed address the network gives this NIC (nat/isolated with DHCP), 10.0.2.15 for user, null otherwise',
    }),
    slot: Type.Integer({ minimum: 0, maximum: 7 }),
  },
  { additionalProperties: false },
);
export type Nic = Static<typeof Nic>;

const Mac = Type.String({
  pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$',
  description: 'A unicast MAC (the first octet\'s low bit clear); default: a new random 52:54:00:xx:xx:xx',
});

/** `POST /api/vms/{vm_id}/nics` (at most 8 NICs a VM); on a running VM it is hot-plugged. */
export const CreateNicBody = Type.Object(
  { network: Type.String({ minLength: 1, maxLength: 64, description: 'Network id or name' }), model: Type.Optional(NicModel), mac: Type.Optional(Mac) },
  { additionalProperties: false },
);
export type CreateNicBody = Static<typeof CreateNicBody>;

/** `PATCH /api/vms/{vm_id}/nics/{nic_id}`: while the VM runs only `network` may change (unplug + plug). */
export const UpdateNicBody = Type.Object(
  { network: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), model: Type.Optional(NicModel), mac: Type.Optional(Mac) },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateNicBody = Static<typeof UpdateNicBody>;

export const NicParams = Type.Object({ vm_id: PathId, nic_id: PathId }, { additionalProperties: false });
export type NicParams = Static<typeof NicParams>;

export const NicList = Type.Object({ nics: Type.Array(Nic) }, { additionalProperties: false });
export type NicList = Static<typeof NicList>;

export const ForwardProtocol = Type.Union([Type.Literal('tcp'), Type.Literal('udp')]);
export type ForwardProtocol = Static<typeof ForwardProtocol>;

export const Forward = Type.Object(
  {
    id: Id,
    nic: Id,
    protocol: ForwardProtocol,
    hostAddress: Type.String(),
    hostPort: Type.Integer(),
    guestPort: Type.Integer(),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Forward = Static<typeof Forward>;

/**
 * `POST /api/vms/{vm_id}/forwards` (operate scope). `nic`: the VM's NIC to forward to (default:
 * the first on a user or nat network). `hostAddress`: 127.0.0.1 (default), ::1 is not offered;
 * 0.0.0.0 only with authentication on. A host port in use (by anything, or another forward) is 409.
 */
export const CreateForwardBody = Type.Object(
  {
    protocol: ForwardProtocol,
    hostPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    guestPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    hostAddress: Type.Optional(Type.Union([Type.Literal('127.0.0.1'), Type.Literal('0.0.0.0')])),
    nic: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type CreateForwardBody = Static<typeof CreateForwardBody>;

export const ForwardParams = Type.Object({ vm_id: PathId, forward_id: PathId }, { additionalProperties: false });
export type ForwardParams = Static<typeof ForwardParams>;

export const ForwardList = Type.Object({ forwards: Type.Array(Forward) }, { additionalProperties: false });
export type ForwardList = Static<typeof ForwardList>;

/** One of a VM's addresses, and where the server learned it. */
export const VmAddress = Type.Object(
  {
    nic: Type.Union([Id, Type.Null()], { description: 'The NIC (null: an agent-reported interface whose MAC matches no NIC)' }),
    mac: Type.Union([Type.String(), Type.Null()]),
    ip: Type.String(),
    source: Type.Union([Type.Literal('dhcp'), Type.Literal('agent'), Type.Literal('user')], {
      description: 'dhcp: a dnsmasq lease; agent: the guest agent (issue 14); user: the fixed user-mode address 10.0.2.15',
    }),
  },
  { additionalProperties: false },
);
export type VmAddress = Static<typeof VmAddress>;
