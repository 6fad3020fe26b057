// Networks (issue 11): the forms' checks (mirroring the contract's patterns and the server's
// rules), the ssh line for a forward to port 22, and a VM's first address. Pure, unit-tested.
import { BRIDGE_NAME_PATTERN, NETWORK_NAME_PATTERN, type CreateForwardBody, type CreateNetworkBody, type Forward, type Vm } from '@qemu-manager/contract';
import { t } from '../../i18n';
import { parseIntStrict } from '../../lib/validation';

const nameRe = new RegExp(NETWORK_NAME_PATTERN);
const bridgeRe = new RegExp(BRIDGE_NAME_PATTERN);
const octet = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const ipv4Re = new RegExp(`^(${octet}\\.){3}${octet}$`);
const cidrRe = new RegExp(`^((${octet}\\.){3}${octet})/(1[6-9]|2[0-9])$`);
const SSH_USER_RE = /^[A-Za-z_][A-Za-z0-9._-]{0,31}$/;
const macRe = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** An IPv4 address as a 32-bit number; null when it is not one. */
export function ipToInt(ip: string): number | null {
  if (!ipv4Re.test(ip)) return null;
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** A subnet's first and last address (network and broadcast); null when it is not a valid a.b.c.d/16..29 with zero host bits. */
export function subnetRange(cidr: string): { base: number; last: number } | null {
  const m = cidrRe.exec(cidr);
  if (!m) return null;
  const base = ipToInt(m[1]!)!;
  const bits = Number(m[m.length - 1]);
  const size = 2 ** (32 - bits);
  if (base % size !== 0) return null;
  return { base, last: base + size - 1 };
}

export interface NetworkForm {
  name: string;
  type: CreateNetworkBody['type'];
  /** Empty: the server picks the first free 192.168.N.0/24. */
  subnet: string;
  /** 'default': the server's .2 – last but one; 'none': no DHCP; 'custom': start/end below. */
  dhcpMode: 'default' | 'none' | 'custom';
  dhcpStart: string;
  dhcpEnd: string;
  bridge: string;
}

export const emptyNetworkForm = (): NetworkForm => ({ name: '', type: 'nat', subnet: '', dhcpMode: 'default', dhcpStart: '', dhcpEnd: '', bridge: '' });

export type NetworkFormErrors = Partial<Record<'name' | 'subnet' | 'dhcp' | 'bridge', string>>;

/** What is wrong with the form (empty: nothing), in the UI's words. */
export function networkFormErrors(f: NetworkForm): NetworkFormErrors {
  const w = t.networks;
  const e: NetworkFormErrors = {};
  if (!nameRe.test(f.name)) e.name = w.nameInvalid;
  if (f.type === 'bridge') {
    if (!bridgeRe.test(f.bridge.trim())) e.bridge = w.bridgeInvalid;
    return e;
  }
  const subnet = f.subnet.trim();
  const range = subnet ? subnetRange(subnet) : null;
  if (subnet && !range) e.subnet = w.subnetInvalid;
  if (f.dhcpMode === 'custom') {
    const s = ipToInt(f.dhcpStart.trim());
    const end = ipToInt(f.dhcpEnd.trim());
    if (s === null || end === null) e.dhcp = w.dhcpInvalid;
    else if (s > end) e.dhcp = w.dhcpOrder;
    else if (range && (s <= range.base + 1 || end >= range.last)) e.dhcp = w.dhcpOutside;
    else if (!subnet) e.dhcp = w.dhcpNeedsSubnet;
  }
  return e;
}

/** The POST /api/networks body of a valid form (empty optional fields left out). */
export function createNetworkBody(f: NetworkForm): CreateNetworkBody {
  if (f.type === 'bridge') return { name: f.name, type: 'bridge', bridge: f.bridge.trim() };
  const body: CreateNetworkBody = { name: f.name, type: f.type };
  if (f.subnet.trim()) body.subnet = f.subnet.trim();
  if (f.dhcpMode === 'none') body.dhcp = null;
  if (f.dhcpMode === 'custom') body.dhcp = { start: f.dhcpStart.trim(), end: f.dhcpEnd.trim() };
  return body;
}

export const isValidMac = (s: string): boolean => macRe.test(s) && (parseInt(s.slice(0, 2), 16) & 1) === 0;

export interface ForwardForm {
  protocol: CreateForwardBody['protocol'];
  hostAddress: '127.0.0.1' | '0.0.0.0';
  hostPort: string;
  guestPort: string;
  /** Empty: the server's default (the first NIC on a user or nat network). */
  nic: string;
}

export const emptyForwardForm = (): ForwardForm => ({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: '', guestPort: '22', nic: '' });

const port = (s: string): number | null => {
  const n = parseIntStrict(s);
  return n !== null && n >= 1 && n <= 65535 ? n : null;
};

export function forwardFormErrors(f: ForwardForm): Partial<Record<'hostPort' | 'guestPort', string>> {
  const e: Partial<Record<'hostPort' | 'guestPort', string>> = {};
  if (port(f.hostPort) === null) e.hostPort = t.networks.portInvalid;
  if (port(f.guestPort) === null) e.guestPort = t.networks.portInvalid;
  return e;
}

export function createForwardBody(f: ForwardForm): CreateForwardBody {
  const body: CreateForwardBody = { protocol: f.protocol, hostPort: port(f.hostPort)!, guestPort: port(f.guestPort)! };
  if (f.hostAddress !== '127.0.0.1') body.hostAddress = f.hostAddress;
  if (f.nic) body.nic = f.nic;
  return body;
}

/**
 * The ssh command for a TCP forward to guest port 22 (null for any other forward): to 127.0.0.1
 * for a loopback forward, to the host this page was loaded from for one on 0.0.0.0.
 */
export function sshCommand(f: Pick<Forward, 'protocol' | 'guestPort' | 'hostPort' | 'hostAddress'>, pageHost: string, user = ''): string | null {
  if (f.protocol !== 'tcp' || f.guestPort !== 22) return null;
  // location.hostname puts an IPv6 literal in brackets; ssh wants it bare.
  const host = f.hostAddress === '0.0.0.0' ? pageHost.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1' : f.hostAddress;
  // Only a plain user name goes into a line meant for pasting into a shell.
  const u = user.trim();
  return `ssh -p ${f.hostPort} ${SSH_USER_RE.test(u) ? `${u}@` : ''}${host}`;
}

/** The address the VM list shows: the first one the server knows (DHCP or agent before the fixed user-mode one). */
export function firstAddress(vm: Pick<Vm, 'addresses'>): string | null {
  const list = vm.addresses ?? [];
  const known = list.find((a) => a.source !== 'user') ?? list[0];
  return known?.ip ?? null;
}
