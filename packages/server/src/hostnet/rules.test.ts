import { describe, expect, it } from 'vitest';
import type { DnatForward, ManagedNetworkSpec } from '../runtime/network-port.js';
import { networkRules } from './rules.js';

const lab: ManagedNetworkSpec = {
  id: 'n1', name: 'lab', type: 'nat', bridge: 'qm-lab', subnet: '10.77.0.0/24', gateway: '10.77.0.1',
  dhcp: { start: '10.77.0.10', end: '10.77.0.99' }, hosts: [],
};
const iso: ManagedNetworkSpec = { id: 'n2', name: 'iso', type: 'isolated', bridge: 'qm-iso', subnet: '10.78.0.0/24', gateway: '10.78.0.1', dhcp: null, hosts: [] };
const fwd = (over: Partial<DnatForward>): DnatForward => ({
  id: 'f', protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestIp: '10.77.0.10', guestPort: 22, bridge: 'qm-lab', ...over,
});

const HEAD = [
  'table inet qemu_manager {',
  '  chain net_input { type filter hook input priority filter; policy accept; }',
  '  chain net_forward { type filter hook forward priority filter; policy accept; }',
  '  chain net_prerouting { type nat hook prerouting priority dstnat; policy accept; }',
  '  chain net_output { type nat hook output priority -100; policy accept; }',
  '  chain net_postrouting { type nat hook postrouting priority srcnat; policy accept; }',
  '}',
  'flush chain inet qemu_manager net_input',
  'flush chain inet qemu_manager net_forward',
  'flush chain inet qemu_manager net_prerouting',
  'flush chain inet qemu_manager net_output',
  'flush chain inet qemu_manager net_postrouting',
];

describe('networkRules', () => {
  it('writes every network chain in one script: a nat and an isolated network with forwards', () => {
    const text = networkRules(
      [lab, iso],
      [
        fwd({ id: 'f1' }),
        fwd({ id: 'f2', protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 5353, guestIp: '10.77.0.11', guestPort: 53 }),
        fwd({ id: 'f3', hostAddress: '0.0.0.0', hostPort: 8080, guestIp: '10.78.0.10', guestPort: 80, bridge: 'qm-iso' }),
      ],
    );
    expect(text).toBe(
      [
        ...HEAD,
        'table inet qemu_manager {',
        '  chain net_input {',
        '    iifname "qm-*" ct state established,related accept',
        '    iifname "qm-lab" ip daddr { 255.255.255.255, 10.77.0.1 } udp dport 67 accept',
        '    iifname "qm-lab" ip daddr 10.77.0.1 meta l4proto { tcp, udp } th dport 53 accept',
        '    iifname "qm-iso" ip daddr { 255.255.255.255, 10.78.0.1 } udp dport 67 accept',
        '    iifname "qm-iso" ip daddr 10.78.0.1 meta l4proto { tcp, udp } th dport 53 accept',
        '    iifname "qm-*" drop',
        '  }',
        '  chain net_forward {',
        '    iifname "qm-lab" oifname "qm-lab" accept',
        '    iifname "qm-lab" oifname != "qm-*" ip saddr 10.77.0.0/24 accept',
        '    oifname "qm-lab" ct state established,related accept',
        '    oifname "qm-lab" ct status dnat accept',
        '    iifname "qm-iso" oifname "qm-iso" accept',
        '    iifname "qm-*" drop',
        '    oifname "qm-*" drop',
        '  }',
        '  chain net_prerouting {',
        '    fib daddr type local udp dport 5353 dnat ip to 10.77.0.11:53',
        '  }',
        '  chain net_output {',
        '    ip daddr 127.0.0.1 tcp dport 2222 dnat ip to 10.77.0.10:22',
        '    fib daddr type local udp dport 5353 dnat ip to 10.77.0.11:53',
        '    fib daddr type local tcp dport 8080 dnat ip to 10.78.0.10:80',
        '  }',
        '  chain net_postrouting {',
        '    oifname != "qm-lab" ip saddr 10.77.0.0/24 masquerade',
        '    oifname "qm-lab" meta nfproto ipv4 fib saddr type local masquerade',
        '    oifname "qm-iso" meta nfproto ipv4 fib saddr type local masquerade',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('deletes the chains when there is no managed network and no forward', () => {
    expect(networkRules([], [])).toBe(
      [
        ...HEAD,
        'delete chain inet qemu_manager net_input',
        'delete chain inet qemu_manager net_forward',
        'delete chain inet qemu_manager net_prerouting',
        'delete chain inet qemu_manager net_output',
        'delete chain inet qemu_manager net_postrouting',
        '',
      ].join('\n'),
    );
  });

  it('never names the guest isolation chain or set', () => {
    for (const t of [networkRules([lab], [fwd({})]), networkRules([], [])]) {
      expect(t).not.toContain('guest_output');
      expect(t).not.toContain('guest_uids');
      expect(t).not.toMatch(/flush table|delete table|flush ruleset/);
    }
  });

  it('refuses anything that is not a clean name, address or port before writing a rule', () => {
    expect(() => networkRules([{ ...lab, bridge: 'qm-x"; flush ruleset' }], [])).toThrow(/Refusing the link name/);
    expect(() => networkRules([{ ...lab, bridge: 'eth0' }], [])).toThrow(/Refusing the link name/);
    expect(() => networkRules([{ ...lab, subnet: '10.77.0.0/24 accept' }], [])).toThrow(/not an IPv4 subnet/);
    expect(() => networkRules([{ ...lab, gateway: '10.77.0.1; drop' }], [])).toThrow(/not an IPv4 address/);
    expect(() => networkRules([lab], [fwd({ hostPort: 0 })])).toThrow(/not a port: 0/);
    expect(() => networkRules([lab], [fwd({ guestPort: 65536 })])).toThrow(/not a port: 65536/);
    expect(() => networkRules([lab], [fwd({ hostAddress: '10.0.0.1' })])).toThrow(/not a forward host address/);
    expect(() => networkRules([lab], [fwd({ protocol: 'sctp' as 'tcp' })])).toThrow(/not a protocol/);
    expect(() => networkRules([lab], [fwd({ bridge: 'qm-other' })])).toThrow(/no managed network/);
  });
});
