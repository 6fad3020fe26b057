import { describe, expect, it } from 'vitest';
import { buildArgv, hostfwdHostSide, hostfwdRule, netdevAddArgs, nicDeviceAddArgs, nicLayout, type ArgvInput, type ArgvNic } from './argv.js';

// networks (issue 11): NICs are input to the pure argv builder.
const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'web-1',
  cpus: 1,
  memoryMiB: 256,
  mac: '52:54:00:aa:bb:cc',
  vnc: { socket: '/data/run/x/qemu/vnc.sock' },
  accel: 'tcg',
  disks: [{ layers: [{ fd: 4, format: 'qcow2' }] }],
  iso: null,
  qmpSocket: '/data/run/x/qemu/qmp.sock',
  pidFile: '/data/run/x/qemu/qemu.pid',
  serialFd: 3,
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);
const user = (slot: number, mac: string, forwards: ArgvNic['backend'] extends infer B ? (B extends { type: 'user'; forwards: infer F } ? F : never) : never = [], model: ArgvNic['model'] = 'virtio'): ArgvNic => ({
  slot,
  model,
  mac,
  backend: { type: 'user', forwards },
});
const tap = (slot: number, mac: string, ifname: string, model: ArgvNic['model'] = 'virtio'): ArgvNic => ({ slot, model, mac, backend: { type: 'tap', ifname } });

const ROOT_PORTS_1_7 = [1, 2, 3, 4, 5, 6, 7].map((s) => `pcie-root-port,id=rp-nic${s},chassis=${s + 1},slot=${s + 1}`);

describe('buildArgv: NICs (issue 11)', () => {
  it('without nics: exactly the single user NIC of before, and no root ports', () => {
    const argv = buildArgv(base);
    expect(after(argv, '-netdev')).toEqual(['user,id=net0']);
    expect(after(argv, '-device').filter((d) => d.includes('netdev='))).toEqual(['virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:aa:bb:cc']);
    expect(argv.some((a) => a.startsWith('pcie-root-port'))).toBe(false);
  });

  it('a user NIC with forwards: hostfwd rules on its netdev; nic0 where the single NIC was (before the disks)', () => {
    const argv = buildArgv({
      ...base,
      nics: [user(0, '52:54:00:00:00:01', [
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 },
        { protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 5353, guestPort: 53 },
      ])],
    });
    expect(after(argv, '-netdev')).toEqual(['user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:5353-:53']);
    const devices = after(argv, '-device');
    const nic0 = devices.indexOf('virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:00:00:01');
    expect(nic0).toBeGreaterThan(-1);
    // the same place as before networks: right before the first disk, after the USB devices
    const legacy = after(buildArgv(base), '-device');
    expect(nic0).toBe(legacy.indexOf('virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:aa:bb:cc'));
    expect(devices[nic0 + 1]).toBe('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=1');
  });

  it('q35: root ports for slots 1..7 after every other device, NICs of slots > 0 behind their own port', () => {
    const argv = buildArgv({
      ...base,
      agentSocket: '/data/run/x/qemu/qga.sock',
      nics: [tap(2, '52:54:00:00:00:03', 'qm-0123abcd.2', 'e1000e'), user(0, '52:54:00:00:00:01')],
    });
    expect(after(argv, '-netdev')).toEqual(['user,id=net0', 'tap,id=net2,ifname=qm-0123abcd.2,script=no,downscript=no']);
    const devices = after(argv, '-device');
    const agentPort = devices.indexOf('virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0');
    expect(devices.slice(agentPort + 1)).toEqual([...ROOT_PORTS_1_7, 'e1000e,id=nic2,netdev=net2,mac=52:54:00:00:00:03,bus=rp-nic2']);
    // everything before the added devices is what a single-NIC VM had
    const legacy = after(buildArgv({ ...base, agentSocket: '/data/run/x/qemu/qga.sock', mac: '52:54:00:00:00:01' }), '-device');
    expect(devices.slice(0, agentPort + 1)).toEqual(legacy);
  });

  it('q35 without a slot 0 NIC: slot 0 gets a root port too (a later hot-plug can go there)', () => {
    const argv = buildArgv({ ...base, nics: [] });
    expect(after(argv, '-netdev')).toEqual([]);
    expect(after(argv, '-device').filter((d) => d.startsWith('pcie-root-port'))).toEqual([
      'pcie-root-port,id=rp-nic0,chassis=1,slot=1',
      ...ROOT_PORTS_1_7,
    ]);
    const one = buildArgv({ ...base, nics: [user(3, '52:54:00:00:00:04', [], 'rtl8139')] });
    expect(after(one, '-device')).toContain('rtl8139,id=nic3,netdev=net3,mac=52:54:00:00:00:04,bus=rp-nic3');
  });

  it('pc: no root ports; every NIC on pci.0 (slot 0 in place, the others last)', () => {
    const argv = buildArgv({ ...base, machine: 'pc', nics: [user(1, '52:54:00:00:00:02'), user(0, '52:54:00:00:00:01', [], 'rtl8139')] });
    const devices = after(argv, '-device');
    expect(devices.some((d) => d.startsWith('pcie-root-port'))).toBe(false);
    expect(devices).toContain('rtl8139,id=nic0,netdev=net0,mac=52:54:00:00:00:01');
    expect(devices[devices.length - 1]).toBe('virtio-net-pci,id=nic1,netdev=net1,mac=52:54:00:00:00:02');
  });

  it('boot from the network: the bootindex goes on the first NIC only', () => {
    const argv = buildArgv({
      ...base,
      bootOrder: ['network', 'disk'],
      nics: [user(4, '52:54:00:00:00:05'), user(1, '52:54:00:00:00:02')],
    });
    const devices = after(argv, '-device');
    expect(devices).toContain('virtio-net-pci,id=nic1,netdev=net1,mac=52:54:00:00:00:02,bus=rp-nic1,bootindex=1');
    expect(devices).toContain('virtio-net-pci,id=nic4,netdev=net4,mac=52:54:00:00:00:05,bus=rp-nic4');
    expect(devices).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=2');
  });

  it('refuses malformed NICs: slots, duplicates, models, MACs, tap names, forwards (QemuOpts syntax never gets through)', () => {
    const bad: Array<[string, ArgvNic[]]> = [
      ['slot 8', [user(8, '52:54:00:00:00:01')]],
      ['slot -1', [user(-1, '52:54:00:00:00:01')]],
      ['slot 1.5', [user(1.5, '52:54:00:00:00:01')]],
      ['two in one slot', [user(1, '52:54:00:00:00:01'), user(1, '52:54:00:00:00:02')]],
      ['model', [{ ...user(0, '52:54:00:00:00:01'), model: 'ne2k_pci' as ArgvNic['model'] }]],
      ['mac with a comma', [user(0, '52:54:00:00:00:01,romfile=/x')]],
      ['tap not ours', [tap(1, '52:54:00:00:00:02', 'eth0')]],
      ['tap with options', [tap(1, '52:54:00:00:00:02', 'qm-0123abcd.1,script=/bin/sh')]],
      ['tap of another slot range', [tap(1, '52:54:00:00:00:02', 'qm-0123abcd.8')]],
      ['port 0', [user(0, '52:54:00:00:00:01', [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 0, guestPort: 80 }])]],
      ['port 65536', [user(0, '52:54:00:00:00:01', [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 65536 }])]],
      ['address with a comma', [user(0, '52:54:00:00:00:01', [{ protocol: 'tcp', hostAddress: '127.0.0.1,restrict=off', hostPort: 8080, guestPort: 80 }])]],
      ['address not IPv4', [user(0, '52:54:00:00:00:01', [{ protocol: 'tcp', hostAddress: 'localhost', hostPort: 8080, guestPort: 80 }])]],
      ['address 256', [user(0, '52:54:00:00:00:01', [{ protocol: 'tcp', hostAddress: '127.0.0.256', hostPort: 8080, guestPort: 80 }])]],
      ['protocol', [user(0, '52:54:00:00:00:01', [{ protocol: 'sctp' as 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 }])]],
    ];
    for (const [what, nics] of bad) expect(() => buildArgv({ ...base, nics }), what).toThrow();
  });
});

describe('hot-plug arguments (issue 11)', () => {
  it('netdev_add: a user backend with its forwards, a tap by name without scripts', () => {
    expect(netdevAddArgs(user(2, '52:54:00:00:00:03', [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestPort: 22 }]))).toEqual({
      type: 'user',
      id: 'net2',
      hostfwd: [{ str: 'tcp:127.0.0.1:2222-:22' }],
    });
    expect(netdevAddArgs(user(1, '52:54:00:00:00:02'))).toEqual({ type: 'user', id: 'net1' });
    expect(netdevAddArgs(tap(3, '52:54:00:00:00:04', 'qm-0123abcd.3'))).toEqual({ type: 'tap', id: 'net3', ifname: 'qm-0123abcd.3', script: 'no', downscript: 'no' });
    expect(() => netdevAddArgs(tap(3, '52:54:00:00:00:04', 'br0'))).toThrow();
  });

  it('device_add: into the slot\'s root port on q35, onto pci.0 on pc', () => {
    expect(nicDeviceAddArgs(user(1, '52:54:00:00:00:02', [], 'e1000e'), 'q35')).toEqual({
      driver: 'e1000e', id: 'nic1', netdev: 'net1', mac: '52:54:00:00:00:02', bus: 'rp-nic1',
    });
    expect(nicDeviceAddArgs(user(1, '52:54:00:00:00:02', [], 'rtl8139'), 'pc')).toEqual({ driver: 'rtl8139', id: 'nic1', netdev: 'net1', mac: '52:54:00:00:00:02' });
  });

  it('the layout: which slots have a root port', () => {
    expect(nicLayout('q35', [0]).rootPorts).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(nicLayout('q35', [0]).bus(0)).toBeNull();
    expect(nicLayout('q35', [1]).rootPorts).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(nicLayout('pc', [0, 1]).rootPorts).toEqual([]);
  });

  it('HMP forward rules, validated', () => {
    expect(hostfwdRule({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 })).toBe('tcp:127.0.0.1:8080-:80');
    expect(hostfwdHostSide({ protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 5353 })).toBe('udp:0.0.0.0:5353');
    expect(() => hostfwdRule({ protocol: 'tcp', hostAddress: '127.0.0.1 ; quit', hostPort: 8080, guestPort: 80 })).toThrow();
    expect(() => hostfwdHostSide({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 70000 })).toThrow();
  });
});
