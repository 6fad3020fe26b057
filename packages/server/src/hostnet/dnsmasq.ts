/**
 * One dnsmasq per managed network: DHCP (fixed addresses only: every NIC's mac → ip is in the hosts
 * file, chosen by the domain) and DNS on the network's gateway. It runs daemonized with a pid file
 * under the run dir and is found again after a server restart by that pid file AND its
 * /proc/<pid>/cmdline naming that pid file: a pid that is not such a dnsmasq is never signalled.
 *
 * dnsmasq drops to `nobody` after start (its default, kept): the pid and lease files are opened
 * before that (the lease file stays open and is rewritten through that descriptor), and the hosts
 * file it re-reads on SIGHUP is world-readable (macs and addresses only) in a run dir others may
 * traverse but not list.
 */
import fs from 'node:fs';
import path from 'node:path';
import { contains, netmaskOf, parseIpv4, parseSubnet } from '../lib/ipv4.js';
import { isAlive, readCmdline } from '../lib/proc.js';
import { delay } from '../lib/time.js';
import type { HostLease, ManagedNetworkSpec, NetworkHost } from '../runtime/network-port.js';
import { networkId, ourLink } from './names.js';

export interface DnsmasqFiles {
  pid: string;
  leases: string;
  hosts: string;
}

export function dnsmasqFiles(runDir: string, id: string): DnsmasqFiles {
  const base = path.join(runDir, networkId(id));
  return { pid: `${base}.pid`, leases: `${base}.leases`, hosts: `${base}.hosts` };
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** dnsmasq's arguments for a network (pure, unit-tested). */
export function dnsmasqArgs(spec: ManagedNetworkSpec, files: DnsmasqFiles): string[] {
  const bridge = ourLink(spec.bridge);
  const subnet = parseSubnet(spec.subnet);
  const gw = parseIpv4(spec.gateway);
  if (!contains(subnet, gw)) throw new Error(`gateway ${spec.gateway} is outside ${spec.subnet}`);
  const args = [
    '--conf-file=/dev/null',
    '--bind-interfaces',
    `--interface=${bridge}`,
    '--except-interface=lo',
    `--listen-address=${spec.gateway}`,
    `--pid-file=${files.pid}`,
    // The host's /etc/hosts stays the host's; names outside a domain and private reverse lookups are not sent upstream.
    '--no-hosts',
    '--domain-needed',
    '--bogus-priv',
  ];
  if (spec.type === 'isolated') args.push('--no-resolv', '--no-poll');
  if (spec.dhcp) {
    for (const a of [spec.dhcp.start, spec.dhcp.end]) {
      if (!contains(subnet, parseIpv4(a))) throw new Error(`DHCP address ${a} is outside ${spec.subnet}`);
    }
    // `static`: only the NICs in the hosts file get an address (each its fixed one, from the pool).
    args.push(
      `--dhcp-range=${spec.dhcp.start},static,${netmaskOf(subnet.prefix)},1h`,
      `--dhcp-hostsfile=${files.hosts}`,
      `--dhcp-leasefile=${files.leases}`,
      '--dhcp-authoritative',
      '--dhcp-no-override',
    );
    // An isolated network has no way out: no default route for its guests.
    if (spec.type === 'isolated') args.push('--dhcp-option=option:router');
  }
  return args;
}

/** The hosts file: one `mac,ip` a line (validated; throws on anything else). */
export function hostsFileText(hosts: readonly NetworkHost[]): string {
  return hosts
    .map((h) => {
      const mac = h.mac.toLowerCase();
      if (!MAC.test(mac)) throw new Error(`not a MAC address: ${h.mac}`);
      parseIpv4(h.ip);
      return `${mac},${h.ip}\n`;
    })
    .join('');
}

/** Writes a file next to itself then renames it in place (dnsmasq never reads half a file). */
export function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode, flag: 'w' });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

export const LEASES_MAX_LINES = 4096;
export const LEASES_MAX_BYTES = 1 << 20;
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;

/**
 * A dnsmasq lease file (`<expiry epoch> <mac> <ip> <hostname|*> <client id|*>` a line), pure and
 * bounded: at most 4096 lines are looked at, lines that do not parse or whose address is outside
 * `subnet` are skipped, a hostname that is not a plain label is null (the guest chose it).
 */
export function parseLeases(text: string, subnet: string): HostLease[] {
  const net = parseSubnet(subnet);
  const out: HostLease[] = [];
  const lines = text.slice(0, LEASES_MAX_BYTES).split('\n', LEASES_MAX_LINES);
  for (const line of lines) {
    const [expiry, macRaw, ip, name] = line.trim().split(/\s+/);
    if (!expiry || !macRaw || !ip || !/^\d{1,12}$/.test(expiry)) continue;
    const mac = macRaw.toLowerCase();
    if (!MAC.test(mac)) continue;
    let addr: number;
    try {
      addr = parseIpv4(ip);
    } catch {
      continue;
    }
    if (!contains(net, addr)) continue;
    const seconds = Number(expiry);
    out.push({
      mac,
      ip,
      hostname: name !== undefined && HOSTNAME.test(name) ? name : null,
      expiresAt: seconds === 0 ? null : new Date(seconds * 1000).toISOString(),
    });
  }
  return out;
}

/** Reads at most LEASES_MAX_BYTES of a lease file ('' when there is none). */
export function readBounded(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return '';
    const buf = Buffer.alloc(LEASES_MAX_BYTES);
    let len = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len === buf.length) break;
    }
    return buf.subarray(0, len).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** The pid of our dnsmasq for these files, or null: the pid file names a live process whose cmdline holds `--pid-file=<this file>`. */
export function runningDnsmasq(files: DnsmasqFiles): number | null {
  let text: string;
  try {
    text = readBounded(files.pid).slice(0, 32).trim();
  } catch {
    return null;
  }
  if (!/^\d{1,9}$/.test(text)) return null;
  const pid = Number(text);
  return isOurs(pid, files) ? pid : null;
}

function isOurs(pid: number, files: DnsmasqFiles): boolean {
  if (!isAlive(pid)) return false;
  const cmd = readCmdline(pid);
  return !!cmd && cmd.includes(`--pid-file=${files.pid}`);
}

/** Sends `sig` to the pid only while it is still our dnsmasq. */
export function signalOurs(pid: number, files: DnsmasqFiles, sig: NodeJS.Signals): boolean {
  if (!isOurs(pid, files)) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Stops our dnsmasq: SIGTERM, then SIGKILL after 3 s; resolves once it is gone. */
export async function stopDnsmasq(pid: number, files: DnsmasqFiles): Promise<void> {
  if (!signalOurs(pid, files, 'SIGTERM')) return;
  // Gone, not just no longer ours: a process on its way out loses its command line (its memory)
  // before its descriptors, so until it is a zombie its sockets still hold the gateway's port 53
  // and a dnsmasq started now for the same address would fail to bind.
  for (let i = 0; i < 60; i++) {
    if (exited(pid)) return;
    await delay(50);
  }
  signalOurs(pid, files, 'SIGKILL');
  for (let i = 0; i < 100 && !exited(pid); i++) await delay(20);
}

/** The process is gone or a zombie (its descriptors are closed). */
function exited(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}
