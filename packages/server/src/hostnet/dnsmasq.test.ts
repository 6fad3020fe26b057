import { describe, expect, it } from 'vitest';
import type { ManagedNetworkSpec } from '../runtime/network-port.js';
import { dnsmasqArgs, dnsmasqFiles, hostsFileText, LEASES_MAX_LINES, parseLeases } from './dnsmasq.js';

const lab: ManagedNetworkSpec = {
  id: 'net-1', name: 'lab', type: 'nat', bridge: 'qm-lab', subnet: '10.77.0.0/24', gateway: '10.77.0.1',
  dhcp: { start: '10.77.0.10', end: '10.77.0.99' }, hosts: [],
};
const files = dnsmasqFiles('/data/run/net', 'net-1');

describe('dnsmasqArgs', () => {
  it('a nat network: bound to its bridge and gateway, fixed addresses only, files under the run dir', () => {
    expect(files).toEqual({ pid: '/data/run/net/net-1.pid', leases: '/data/run/net/net-1.leases', hosts: '/data/run/net/net-1.hosts' });
    expect(dnsmasqArgs(lab, files)).toEqual([
      '--conf-file=/dev/null',
      '--bind-interfaces',
      '--interface=qm-lab',
      '--except-interface=lo',
      '--listen-address=10.77.0.1',
      '--pid-file=/data/run/net/net-1.pid',
      '--no-hosts',
      '--domain-needed',
      '--bogus-priv',
      '--dhcp-range=10.77.0.10,static,255.255.255.0,1h',
      '--dhcp-hostsfile=/data/run/net/net-1.hosts',
      '--dhcp-leasefile=/data/run/net/net-1.leases',
      '--dhcp-authoritative',
      '--dhcp-no-override',
    ]);
  });

  it('an isolated network: no upstream resolvers and no default route', () => {
    const args = dnsmasqArgs({ ...lab, type: 'isolated' }, files);
    expect(args.slice(9)).toEqual([
      '--no-resolv',
      '--no-poll',
      '--dhcp-range=10.77.0.10,static,255.255.255.0,1h',
      '--dhcp-hostsfile=/data/run/net/net-1.hosts',
      '--dhcp-leasefile=/data/run/net/net-1.leases',
      '--dhcp-authoritative',
      '--dhcp-no-override',
      '--dhcp-option=option:router',
    ]);
  });

  it('no DHCP: DNS only', () => {
    expect(dnsmasqArgs({ ...lab, dhcp: null }, files)).toHaveLength(9);
  });

  it('refuses what does not belong', () => {
    expect(() => dnsmasqArgs({ ...lab, bridge: 'br0' }, files)).toThrow(/Refusing the link name/);
    expect(() => dnsmasqArgs({ ...lab, gateway: '10.78.0.1' }, files)).toThrow(/outside/);
    expect(() => dnsmasqArgs({ ...lab, dhcp: { start: '10.77.0.10', end: '10.77.1.5' } }, files)).toThrow(/outside/);
    expect(() => dnsmasqFiles('/r', '../etc/x')).toThrow(/Refusing the network id/);
  });
});

describe('hostsFileText', () => {
  it('one mac,ip a line, macs in lower case', () => {
    expect(hostsFileText([{ mac: '52:54:00:AA:bb:01', ip: '10.77.0.10' }, { mac: '52:54:00:aa:bb:02', ip: '10.77.0.11' }])).toBe(
      '52:54:00:aa:bb:01,10.77.0.10\n52:54:00:aa:bb:02,10.77.0.11\n',
    );
    expect(() => hostsFileText([{ mac: '52:54:00:aa:bb:01\nx', ip: '10.77.0.10' }])).toThrow(/not a MAC/);
    expect(() => hostsFileText([{ mac: '52:54:00:aa:bb:01', ip: '10.77.0.10,set:x' }])).toThrow(/not an IPv4/);
  });
});

describe('parseLeases', () => {
  it('parses leases, validating the hostname, the mac and the address', () => {
    const text = [
      '1767312000 52:54:00:aa:bb:01 10.77.0.10 guest-1 01:52:54:00:aa:bb:01',
      '0 52:54:00:AA:BB:02 10.77.0.11 * *',
      '1767312000 52:54:00:aa:bb:03 10.77.0.12 bad_name$(x) *',
      '1767312000 52:54:00:aa:bb:04 10.99.0.12 outside *',
      '1767312000 not-a-mac 10.77.0.13 x *',
      'garbage',
      '',
      `1767312000 52:54:00:aa:bb:05 10.77.0.14 ${'a'.repeat(64)} *`,
    ].join('\n');
    expect(parseLeases(text, '10.77.0.0/24')).toEqual([
      { mac: '52:54:00:aa:bb:01', ip: '10.77.0.10', hostname: 'guest-1', expiresAt: '2026-01-02T00:00:00.000Z' },
      { mac: '52:54:00:aa:bb:02', ip: '10.77.0.11', hostname: null, expiresAt: null },
      { mac: '52:54:00:aa:bb:03', ip: '10.77.0.12', hostname: null, expiresAt: '2026-01-02T00:00:00.000Z' },
      { mac: '52:54:00:aa:bb:05', ip: '10.77.0.14', hostname: null, expiresAt: '2026-01-02T00:00:00.000Z' },
    ]);
  });

  it('looks at no more than 4096 lines', () => {
    const line = '0 52:54:00:aa:bb:01 10.77.0.10 g *';
    expect(parseLeases(Array(LEASES_MAX_LINES + 10).fill(line).join('\n'), '10.77.0.0/24')).toHaveLength(4096);
  });
});
