/**
 * IPv4 arithmetic for networks (issue 11): addresses as unsigned 32-bit numbers, subnets as
 * { base, prefix }. Pure; input is validated text (the contract's patterns) or throws.
 */
export interface Ipv4Subnet {
  /** The network's address (host bits zero). */
  base: number;
  prefix: number;
}

const OCTETS = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** a.b.c.d → number; throws on anything else. */
export function parseIpv4(text: string): number {
  const m = OCTETS.exec(text);
  if (!m) throw new Error(`not an IPv4 address: ${text}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new Error(`not an IPv4 address: ${text}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** The mask of a prefix length as a number (0..32). */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** a.b.c.d/p → subnet; `strict` (default) refuses host bits set. */
export function parseSubnet(text: string, strict = true): Ipv4Subnet {
  const [addr, p, extra] = text.split('/');
  const prefix = Number(p);
  if (extra !== undefined || p === undefined || !/^\d{1,2}$/.test(p) || prefix > 32) throw new Error(`not an IPv4 subnet: ${text}`);
  const n = parseIpv4(addr!);
  const base = (n & maskOf(prefix)) >>> 0;
  if (strict && base !== n) throw new Error(`${text} has host bits set (the network is ${formatIpv4(base)}/${prefix})`);
  return { base, prefix };
}

export function formatSubnet(s: Ipv4Subnet): string {
  return `${formatIpv4(s.base)}/${s.prefix}`;
}

/** The last address (broadcast) of a subnet. */
export function lastOf(s: Ipv4Subnet): number {
  return (s.base | (~maskOf(s.prefix) >>> 0)) >>> 0;
}

export function contains(s: Ipv4Subnet, addr: number): boolean {
  return ((addr & maskOf(s.prefix)) >>> 0) === s.base;
}

/** Whether two subnets share any address. */
export function overlaps(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

/** The netmask in dotted form (dnsmasq's dhcp-range wants it). */
export function netmaskOf(prefix: number): string {
  return formatIpv4(maskOf(prefix));
}
