/**
 * The nftables rules of managed networks and their port forwards, as `nft -f` input (pure,
 * unit-tested). They live in the table `inet qemu_manager` beside the guest isolation's chain
 * `guest_output` and set `guest_uids`, which this script never names. Every network chain is
 * declared, flushed and refilled in ONE script, so the kernel swaps the whole set atomically; with
 * no managed network and no forward the chains are deleted.
 *
 * What the rules say:
 * - input: a guest on a `qm-` bridge reaches the host only for DHCP (udp 67) and DNS (53, tcp and
 *   udp, on its network's gateway), plus answers to what the host opened; everything else a `qm-`
 *   bridge sends to the host is dropped (IPv6 too).
 * - forward: VMs on one bridge reach each other; a `nat` network's subnet goes out to any
 *   non-`qm-` interface, its answers come back, and DNAT'ed forwards come in; nothing else goes
 *   into or out of a `qm-` bridge (so never from one network to another, and an `isolated` network
 *   has no way in or out).
 * - forwards: `0.0.0.0` is a DNAT for every local address, from outside (prerouting, `nat`
 *   networks only) and from the host itself (output); `127.0.0.1` is a DNAT of the host's own
 *   connections to 127.0.0.1 only (output), which needs route_localnet=1 on the bridge. What the
 *   host itself sends into a bridge from one of its own addresses (127.0.0.1 or any other: a
 *   forward's DNAT keeps the source the host picked) is masqueraded to the gateway, so a guest
 *   answers on-link, with or without a default route. An `isolated` network takes forwards only
 *   from the host itself: its guests stay unreachable from the outside.
 * - postrouting: a `nat` subnet is masqueraded out of anything but its own bridge.
 */
import { formatIpv4, formatSubnet, parseIpv4, parseSubnet } from '../lib/ipv4.js';
import type { DnatForward, ManagedNetworkSpec } from '../runtime/network-port.js';
import { ourLink } from './names.js';

export const NFT_TABLE = 'qemu_manager';

/** Our chains and their hooks (priority -100 is dstnat; nft 1.0.6 takes the name only in prerouting). */
export const NET_CHAINS: ReadonlyArray<readonly [string, string]> = [
  ['net_input', 'type filter hook input priority filter; policy accept;'],
  ['net_forward', 'type filter hook forward priority filter; policy accept;'],
  ['net_prerouting', 'type nat hook prerouting priority dstnat; policy accept;'],
  ['net_output', 'type nat hook output priority -100; policy accept;'],
  ['net_postrouting', 'type nat hook postrouting priority srcnat; policy accept;'],
];

interface Net {
  type: 'nat' | 'isolated';
  bridge: string;
  subnet: string;
  gateway: string;
}

function checkNetwork(n: ManagedNetworkSpec): Net {
  if (n.type !== 'nat' && n.type !== 'isolated') throw new Error(`not a managed network type: ${String(n.type)}`);
  return { type: n.type, bridge: ourLink(n.bridge), subnet: formatSubnet(parseSubnet(n.subnet)), gateway: formatIpv4(parseIpv4(n.gateway)) };
}

function checkPort(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`not a port: ${p}`);
  return p;
}

/** The `nft -f` script that makes the network chains exactly this. Throws on anything malformed. */
export function networkRules(networks: readonly ManagedNetworkSpec[], forwards: readonly DnatForward[]): string {
  const nets = networks.map(checkNetwork);
  const byBridge = new Map(nets.map((n) => [n.bridge, n]));
  const head = [
    `table inet ${NFT_TABLE} {`,
    ...NET_CHAINS.map(([name, hook]) => `  chain ${name} { ${hook} }`),
    '}',
    ...NET_CHAINS.map(([name]) => `flush chain inet ${NFT_TABLE} ${name}`),
  ];
  if (nets.length === 0 && forwards.length === 0) {
    return [...head, ...NET_CHAINS.map(([name]) => `delete chain inet ${NFT_TABLE} ${name}`), ''].join('\n');
  }

  const input: string[] = ['iifname "qm-*" ct state established,related accept'];
  const forward: string[] = [];
  const prerouting: string[] = [];
  const output: string[] = [];
  const postrouting: string[] = [];
  for (const n of nets) {
    const br = `"${n.bridge}"`;
    input.push(`iifname ${br} ip daddr { 255.255.255.255, ${n.gateway} } udp dport 67 accept`);
    input.push(`iifname ${br} ip daddr ${n.gateway} meta l4proto { tcp, udp } th dport 53 accept`);
    forward.push(`iifname ${br} oifname ${br} accept`);
    if (n.type === 'nat') {
      forward.push(`iifname ${br} oifname != "qm-*" ip saddr ${n.subnet} accept`);
      forward.push(`oifname ${br} ct state established,related accept`);
      forward.push(`oifname ${br} ct status dnat accept`);
      postrouting.push(`oifname != ${br} ip saddr ${n.subnet} masquerade`);
    }
    postrouting.push(`oifname ${br} meta nfproto ipv4 fib saddr type local masquerade`);
  }
  input.push('iifname "qm-*" drop');
  forward.push('iifname "qm-*" drop', 'oifname "qm-*" drop');

  for (const f of forwards) {
    const net = byBridge.get(f.bridge);
    if (!net) throw new Error(`forward ${f.id} is to ${f.bridge}, which is no managed network`);
    if (f.protocol !== 'tcp' && f.protocol !== 'udp') throw new Error(`not a protocol: ${String(f.protocol)}`);
    const to = `dnat ip to ${formatIpv4(parseIpv4(f.guestIp))}:${checkPort(f.guestPort)}`;
    const match = `${f.protocol} dport ${checkPort(f.hostPort)}`;
    if (f.hostAddress === '0.0.0.0') {
      if (net.type === 'nat') prerouting.push(`fib daddr type local ${match} ${to}`);
      output.push(`fib daddr type local ${match} ${to}`);
    } else if (f.hostAddress === '127.0.0.1') {
      output.push(`ip daddr 127.0.0.1 ${match} ${to}`);
    } else {
      throw new Error(`not a forward host address: ${f.hostAddress}`);
    }
  }

  const chain = (name: string, rules: string[]) => [`  chain ${name} {`, ...rules.map((r) => `    ${r}`), '  }'];
  return [
    ...head,
    `table inet ${NFT_TABLE} {`,
    ...chain('net_input', input),
    ...chain('net_forward', forward),
    ...chain('net_prerouting', prerouting),
    ...chain('net_output', output),
    ...chain('net_postrouting', postrouting),
    '}',
    '',
  ].join('\n');
}
