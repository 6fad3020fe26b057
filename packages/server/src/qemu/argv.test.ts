import { describe, expect, it } from 'vitest';
import { randomMac } from '../lib/mac.js';
import { buildArgv, qemuOptValue, type ArgvInput } from './argv.js';

const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'web-1',
  cpus: 2,
  memoryMiB: 512,
  mac: '52:54:00:aa:bb:cc',
  vnc: { socket: '/data/run/x/qemu/vnc.sock' },
  accel: 'tcg',
  disks: [],
  iso: null,
  qmpSocket: '/data/run/x/qemu/qmp.sock',
  pidFile: '/data/run/x/qemu/qemu.pid',
  serialFd: 3,
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('buildArgv', () => {
  it('starts with the binary and carries resources, uuid, VNC on a unix socket, QMP, pidfile and the sandbox', () => {
    const argv = buildArgv(base);
    expect(argv[0]).toBe('qemu-system-x86_64');
    expect(after(argv, '-smp')).toEqual(['2']);
    expect(after(argv, '-m')).toEqual(['512']);
    expect(after(argv, '-uuid')).toEqual([base.vmId]);
    expect(after(argv, '-vnc')).toEqual(['unix:/data/run/x/qemu/vnc.sock']);
    expect(argv.some((a) => /^(127\.0\.0\.1|0\.0\.0\.0|localhost)?:\d+$/.test(a))).toBe(false);
    expect(after(argv, '-pidfile')).toEqual(['/data/run/x/qemu/qemu.pid']);
    expect(argv).not.toContain('-daemonize');
    expect(after(argv, '-sandbox')).toEqual(['on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']);
    expect(argv).toContain('-nodefaults');
    expect(after(argv, '-chardev')[0]).toBe('socket,id=qmp,path=/data/run/x/qemu/qmp.sock,server=on,wait=off');
    expect(after(argv, '-device')).toContain('virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:aa:bb:cc');
  });

  it('VNC on TCP 127.0.0.1 only when asked (VNC_TCP=1)', () => {
    expect(after(buildArgv({ ...base, vnc: { display: 3 } }), '-vnc')).toEqual(['127.0.0.1:3']);
    expect(after(buildArgv({ ...base, vnc: { socket: '/r/a,b/vnc.sock' } }), '-vnc')).toEqual(['unix:/r/a,,b/vnc.sock']);
  });

  it('uses -cpu host with KVM and -cpu max with TCG', () => {
    expect(after(buildArgv({ ...base, accel: 'kvm' }), '-cpu')).toEqual(['host']);
    expect(after(buildArgv({ ...base, accel: 'kvm' }), '-accel')).toEqual(['kvm']);
    expect(after(buildArgv(base), '-cpu')).toEqual(['max']);
  });

  it('always has an empty CD-ROM drive that boots after the disks', () => {
    const argv = buildArgv({ ...base, disks: [{ layers: [{ fd: 4, format: 'qcow2' }] }, { layers: [{ fd: 5, format: 'raw' }] }] });
    const devices = after(argv, '-device');
    expect(devices).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=1');
    expect(devices).toContain('virtio-blk-pci,id=virtio-disk1,drive=disk1,bootindex=2');
    expect(devices).toContain('ide-cd,id=cd0,bus=ide.0,bootindex=3');
  });

  it('gives QEMU images, medium and serial log as inherited descriptors, never paths', () => {
    const argv = buildArgv({
      ...base,
      disks: [{ layers: [{ fd: 4, format: 'qcow2' }] }, { layers: [{ fd: 5, format: 'raw' }] }],
      iso: { fd: 6 },
    });
    expect(after(argv, '-add-fd')).toEqual(['fd=3,set=3', 'fd=4,set=4', 'fd=5,set=5', 'fd=6,set=6']);
    expect(after(argv, '-chardev')).toContain('file,id=serial0,path=/dev/fdset/3');
    const blockdevs = after(argv, '-blockdev').map((j) => JSON.parse(j));
    expect(blockdevs[0]).toEqual({
      driver: 'qcow2',
      'node-name': 'disk0',
      discard: 'unmap',
      file: { driver: 'file', filename: '/dev/fdset/4', discard: 'unmap' },
      backing: null,
    });
    expect(blockdevs[1]).toEqual({ driver: 'raw', 'node-name': 'disk1', discard: 'unmap', file: { driver: 'file', filename: '/dev/fdset/5', discard: 'unmap' } });
    expect(blockdevs[2]).toEqual({ driver: 'raw', 'node-name': 'cd0-media', 'read-only': true, file: { driver: 'file', filename: '/dev/fdset/6', 'read-only': true } });
    expect(after(argv, '-device')).toContain('ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=3');
    expect(argv.some((a) => a.includes('serial.log'))).toBe(false);
  });

  it('nests the backing chain as read-only nodes, each from its own descriptor, ending in backing null', () => {
    const argv = buildArgv({
      ...base,
      disks: [{ layers: [{ fd: 4, format: 'qcow2' }, { fd: 5, format: 'qcow2' }, { fd: 6, format: 'raw' }] }],
    });
    const [top] = after(argv, '-blockdev').map((j) => JSON.parse(j));
    expect(top.file.filename).toBe('/dev/fdset/4');
    expect(top.backing).toMatchObject({ driver: 'qcow2', 'node-name': 'disk0-b1', 'read-only': true, file: { filename: '/dev/fdset/5', 'read-only': true } });
    expect(top.backing.backing).toEqual({ driver: 'raw', 'node-name': 'disk0-b2', 'read-only': true, file: { driver: 'file', filename: '/dev/fdset/6', 'read-only': true } });
    expect(() => buildArgv({ ...base, disks: [{ layers: [{ fd: 4, format: 'raw' }, { fd: 5, format: 'raw' }] }] })).toThrow(/cannot have a backing/);
  });

  it('refuses descriptor numbers that collide or are stdio', () => {
    expect(() => buildArgv({ ...base, disks: [{ layers: [{ fd: 3, format: 'raw' }] }] })).toThrow(/distinct/);
    expect(() => buildArgv({ ...base, serialFd: 2 })).toThrow(/distinct/);
  });

  it('escapes commas in QemuOpts values so a path cannot add options', () => {
    const argv = buildArgv({ ...base, qmpSocket: '/a,b=c/q.sock', name: 'n' });
    expect(after(argv, '-chardev')[0]).toBe('socket,id=qmp,path=/a,,b=c/q.sock,server=on,wait=off');
    expect(qemuOptValue('a,b,,c')).toBe('a,,b,,,,c');
  });

  it('refuses an image format it does not know', () => {
    expect(() => buildArgv({ ...base, disks: [{ layers: [{ fd: 4, format: 'host_device' }] }] })).toThrow(/unsupported image format/);
  });
});

describe('randomMac', () => {
  it('gives a locally administered 52:54:00 address from the random bytes', () => {
    expect(randomMac(() => Buffer.from([1, 0xab, 0xff]))).toBe('52:54:00:01:ab:ff');
  });
});
