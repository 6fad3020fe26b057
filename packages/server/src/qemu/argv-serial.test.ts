import { describe, expect, it } from 'vitest';
import { buildArgv, type ArgvInput } from './argv.js';

// serial console (issue 14)
const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'web-1',
  cpus: 1,
  memoryMiB: 256,
  mac: '52:54:00:aa:bb:cc',
  vnc: { socket: '/data/run/x/qemu/vnc.sock' },
  accel: 'tcg',
  disks: [{ layers: [{ format: 'qcow2', fd: 3 }] }],
  iso: null,
  qmpSocket: '/data/run/x/qemu/qmp.sock',
  pidFile: '/data/run/x/qemu/qemu.pid',
  serialSocket: '/data/run/x,y/qemu/serial.sock',
};
const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('buildArgv: the serial console socket', () => {
  it('serves the first serial port on a unix socket chardev (server, no wait), commas escaped, no log descriptor', () => {
    const argv = buildArgv(base);
    expect(after(argv, '-chardev')).toContain('socket,id=serial0,path=/data/run/x,,y/qemu/serial.sock,server=on,wait=off');
    expect(after(argv, '-serial')).toEqual(['chardev:serial0']);
    expect(after(argv, '-add-fd')).toEqual(['fd=3,set=3']);
    expect(argv.join(' ')).not.toContain('file,id=serial0');
  });
});
