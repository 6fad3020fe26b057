import { describe, expect, it } from 'vitest';
import { contains, formatIpv4, formatSubnet, lastOf, netmaskOf, overlaps, parseIpv4, parseSubnet } from './ipv4.js';

describe('ipv4', () => {
  it('parses and formats addresses', () => {
    expect(formatIpv4(parseIpv4('192.168.100.1'))).toBe('192.168.100.1');
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(() => parseIpv4('256.1.1.1')).toThrow();
    expect(() => parseIpv4('1.2.3')).toThrow();
    expect(() => parseIpv4('1.2.3.4; drop')).toThrow();
  });
  it('parses subnets and refuses host bits', () => {
    expect(formatSubnet(parseSubnet('10.10.0.0/16'))).toBe('10.10.0.0/16');
    expect(() => parseSubnet('10.10.0.1/16')).toThrow(/host bits/);
    expect(formatSubnet(parseSubnet('10.10.3.7/16', false))).toBe('10.10.0.0/16');
    expect(() => parseSubnet('10.0.0.0/33')).toThrow();
  });
  it('knows the last address, containment, overlap and the netmask', () => {
    const s = parseSubnet('192.168.100.0/24');
    expect(formatIpv4(lastOf(s))).toBe('192.168.100.255');
    expect(contains(s, parseIpv4('192.168.100.77'))).toBe(true);
    expect(contains(s, parseIpv4('192.168.101.1'))).toBe(false);
    expect(overlaps(s, parseSubnet('192.168.0.0/16'))).toBe(true);
    expect(overlaps(s, parseSubnet('192.168.101.0/24'))).toBe(false);
    expect(overlaps(parseSubnet('10.0.0.0/29'), parseSubnet('10.0.0.8/29'))).toBe(false);
    expect(netmaskOf(24)).toBe('255.255.255.0');
    expect(netmaskOf(29)).toBe('255.255.255.248');
  });
});
