import { describe, expect, it } from 'vitest';
import { buildArgv, qemuOptValue, randomMac, type ArgvInput } from './argv.js';

const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'web-1',
  cpus: 2,
  memoryMiB: 512,
  mac: '52:54:00:aa:bb:cc',
  vncDisplay: 3,
  accel: 'tcg',
  disks: [],
  iso: null,
  qmpSocket: '/data/run/x/qmp.sock',
  pidFile: '/data/run/x/qemu.pid',
  serialLog: '/data/run/x/serial.log',
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('buildArgv', () => {
  it('starts with the binary and carries resources, uuid, loopback VNC, QMP, pidfile and the sandbox', () => {
    const argv = buildArgv(base);
    expect(argv[0]).toBe('qemu-system-x86_64');
    expect(after(argv, '-smp')).toEqual(['2']);
    expect(after(argv, '-m')).toEqual(['512']);
    expect(after(argv, '-uuid')).toEqual([base.vmId]);
    expect(after(argv, '-vnc')).toEqual(['127.0.0.1:3']);
    expect(after(argv, '-pidfile')).toEqual(['/data/run/x/qemu.pid']);
    expect(argv).not.toContain('-daemonize');
    expect(after(argv, '-sandbox')).toEqual(['on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']);
    expect(argv).toContain('-nodefaults');
    expect(after(argv, '-chardev')[0]).toBe('socket,id=qmp,path=/data/run/x/qmp.sock,server=on,wait=off');
    expect(after(argv, '-device')).toContain('virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:aa:bb:cc');
  });

  it('uses -cpu host with KVM and -cpu max with TCG', () => {
    expect(after(buildArgv({ ...base, accel: 'kvm' }), '-cpu')).toEqual(['host']);
    expect(after(buildArgv({ ...base, accel: 'kvm' }), '-accel')).toEqual(['kvm']);
    expect(after(buildArgv(base), '-cpu')).toEqual(['max']);
  });

  it('always has an empty CD-ROM drive that boots after the disks', () => {
    const argv = buildArgv({ ...base, disks: [{ path: '/d/a.qcow2', format: 'qcow2' }, { path: '/d/b.img', format: 'raw' }] });
    const devices = after(argv, '-device');
    expect(devices).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=1');
    expect(devices).toContain('virtio-blk-pci,id=virtio-disk1,drive=disk1,bootindex=2');
    expect(devices).toContain('ide-cd,id=cd0,bus=ide.0,bootindex=3');
  });

  it('passes image paths only inside -blockdev JSON with the image format', () => {
    const evil = '/d/x,file.driver=ssh,host=evil"\' $(rm -rf /).qcow2';
    const argv = buildArgv({ ...base, disks: [{ path: evil, format: 'qcow2' }], iso: '/i/a,b.iso' });
    const blockdevs = after(argv, '-blockdev').map((j) => JSON.parse(j));
    expect(blockdevs[0]).toMatchObject({ driver: 'qcow2', 'node-name': 'disk0', file: { driver: 'file', filename: evil } });
    expect(blockdevs[1]).toMatchObject({ driver: 'raw', 'read-only': true, file: { filename: '/i/a,b.iso' } });
    expect(after(argv, '-device')).toContain('ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=2');
    // the path occurs nowhere but inside the JSON values
    expect(argv.filter((a) => a.includes('evil')).every((a) => a.startsWith('{'))).toBe(true);
  });

  it('escapes commas in QemuOpts values so a path cannot add options', () => {
    const argv = buildArgv({ ...base, qmpSocket: '/a,b=c/q.sock', name: 'n' });
    expect(after(argv, '-chardev')[0]).toBe('socket,id=qmp,path=/a,,b=c/q.sock,server=on,wait=off');
    expect(qemuOptValue('a,b,,c')).toBe('a,,b,,,,c');
  });

  it('refuses an image format it does not know', () => {
    expect(() => buildArgv({ ...base, disks: [{ path: '/d/a', format: 'host_device' }] })).toThrow(/unsupported image format/);
  });
});

describe('randomMac', () => {
  it('gives a locally administered 52:54:00 address from the random bytes', () => {
    expect(randomMac(() => Buffer.from([1, 0xab, 0xff]))).toBe('52:54:00:01:ab:ff');
  });
});
