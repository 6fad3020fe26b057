import { describe, expect, it } from 'vitest';
import { buildArgv, type ArgvInput } from './argv.js';

// Cloud-init (issue 12): the NoCloud seed as an extra read-only CD-ROM.
const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'web-1',
  cpus: 1,
  memoryMiB: 256,
  mac: '52:54:00:aa:bb:cc',
  vnc: { socket: '/data/run/x/qemu/vnc.sock' },
  accel: 'tcg',
  disks: [{ layers: [{ format: 'qcow2', fd: 4 }] }],
  iso: { fd: 5 },
  qmpSocket: '/data/run/x/qemu/qmp.sock',
  pidFile: '/data/run/x/qemu/qemu.pid',
  serialFd: 3,
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('buildArgv: cloud-init seed', () => {
  it('no seed: no second CD-ROM', () => {
    const argv = buildArgv(base);
    expect(after(argv, '-device').filter((d) => d.startsWith('ide-cd'))).toEqual(['ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=2']);
    expect(argv.join(' ')).not.toContain('cd-seed');
    expect(buildArgv({ ...base, seed: null })).toEqual(argv);
  });

  it('a seed: a raw read-only node over its fd set and an IDE CD-ROM on ide.1 without a boot index', () => {
    const argv = buildArgv({ ...base, seed: { fd: 6 } });
    expect(after(argv, '-add-fd')).toContain('fd=6,set=6');
    const nodes = after(argv, '-blockdev').map((j) => JSON.parse(j) as Record<string, unknown>);
    expect(nodes).toContainEqual({ driver: 'raw', 'node-name': 'cd-seed-media', 'read-only': true, file: { driver: 'file', filename: '/dev/fdset/6', 'read-only': true } });
    const cds = after(argv, '-device').filter((d) => d.startsWith('ide-cd'));
    expect(cds).toEqual(['ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=2', 'ide-cd,id=cd-seed,bus=ide.1,drive=cd-seed-media']);
    // The seed's device comes after its node, and both before the sandbox.
    expect(argv.indexOf('ide-cd,id=cd-seed,bus=ide.1,drive=cd-seed-media')).toBeLessThan(argv.indexOf('-sandbox'));
  });

  it('refuses a seed descriptor that another file already uses', () => {
    expect(() => buildArgv({ ...base, seed: { fd: 5 } })).toThrow(/distinct/);
    expect(() => buildArgv({ ...base, seed: { fd: 2 } })).toThrow(/from 3 up/);
  });
});
