// Hardware options (issue 12): machine, disk bus, NIC model, boot order and the drivers CD-ROM.
import { describe, expect, it } from 'vitest';
import { buildArgv, CDROM_UNITS, type ArgvInput } from './argv.js';

const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'opts',
  cpus: 1,
  memoryMiB: 256,
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
const disks = (n: number) => Array.from({ length: n }, (_, i) => ({ layers: [{ fd: 10 + i, format: 'qcow2' }] }));
const devices = (input: Partial<ArgvInput>) => after(buildArgv({ ...base, ...input }), '-device');

describe('buildArgv: machine', () => {
  it('q35 by default, pc when asked; UEFI on both, Secure Boot (SMM) only on q35', () => {
    expect(after(buildArgv(base), '-machine')).toEqual(['q35']);
    expect(after(buildArgv({ ...base, machine: 'pc' }), '-machine')).toEqual(['pc']);
    const uefi = { codeFd: 20, varsFd: 21, secureBoot: false };
    expect(after(buildArgv({ ...base, machine: 'pc', uefi }), '-machine')).toEqual(['pc,pflash0=fw-code,pflash1=fw-vars']);
    expect(after(buildArgv({ ...base, machine: 'q35', uefi: { ...uefi, secureBoot: true } }), '-machine')).toEqual(['q35,smm=on,pflash0=fw-code,pflash1=fw-vars']);
    expect(() => buildArgv({ ...base, machine: 'pc', uefi: { ...uefi, secureBoot: true } })).toThrow(/Secure Boot needs the q35 machine/);
  });
});

describe('buildArgv: disk bus', () => {
  it('virtio: one virtio-blk-pci per disk', () => {
    const d = devices({ disks: disks(2) });
    expect(d).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=1');
    expect(d).toContain('virtio-blk-pci,id=virtio-disk1,drive=disk1,bootindex=2');
    expect(d.some((x) => x.startsWith('ide-hd') || x.startsWith('scsi-hd'))).toBe(false);
  });

  it('sata on q35: ide-hd on the AHCI ports the CD-ROMs leave free, in order', () => {
    const d = devices({ diskBus: 'sata', disks: disks(2) });
    expect(d).toContain('ide-cd,id=cd0,bus=ide.0,bootindex=3');
    expect(d).toContain('ide-hd,id=sata-disk0,bus=ide.1,drive=disk0,bootindex=1');
    expect(d).toContain('ide-hd,id=sata-disk1,bus=ide.2,drive=disk1,bootindex=2');
    // with the drivers CD-ROM on ide.2, the second disk moves on to ide.3
    const withDrivers = devices({ diskBus: 'sata', disks: disks(2), driversIso: { fd: 30 } });
    expect(withDrivers).toContain('ide-cd,id=drivers-cd,bus=ide.2,drive=drivers-media');
    expect(withDrivers).toContain('ide-hd,id=sata-disk1,bus=ide.3,drive=disk1,bootindex=2');
    // six ports: the ISO drive and five disks fit, six disks do not
    expect(() => buildArgv({ ...base, diskBus: 'sata', disks: disks(5) })).not.toThrow();
    expect(() => buildArgv({ ...base, diskBus: 'sata', disks: disks(6) })).toThrow(/6 SATA disks and 1 CD-ROMs do not fit the 6 SATA ports of the q35 machine/);
  });

  it('sata on pc: IDE, 4 units for disks and CD-ROMs together (primary master first, the ISO drive on the secondary master)', () => {
    const d = devices({ machine: 'pc', diskBus: 'sata', disks: disks(2) });
    expect(d).toContain('ide-hd,id=sata-disk0,bus=ide.0,unit=0,drive=disk0,bootindex=1');
    expect(d).toContain('ide-hd,id=sata-disk1,bus=ide.0,unit=1,drive=disk1,bootindex=2');
    expect(d).toContain('ide-cd,id=cd0,bus=ide.1,unit=0,bootindex=3');
    expect(() => buildArgv({ ...base, machine: 'pc', diskBus: 'sata', disks: disks(3) })).not.toThrow();
    expect(() => buildArgv({ ...base, machine: 'pc', diskBus: 'sata', disks: disks(3), driversIso: { fd: 30 } })).toThrow(
      /3 SATA disks and 2 CD-ROMs do not fit the 4 IDE units of the pc machine/,
    );
    // the drivers CD-ROM takes the primary slave
    const withDrivers = devices({ machine: 'pc', diskBus: 'sata', disks: disks(1), driversIso: { fd: 30 } });
    expect(withDrivers).toContain('ide-cd,id=drivers-cd,bus=ide.0,unit=1,drive=drivers-media');
    expect(withDrivers).toContain('ide-hd,id=sata-disk0,bus=ide.0,unit=0,drive=disk0,bootindex=1');
  });

  it('scsi: one virtio-scsi-pci controller and a scsi-hd per disk (none without disks)', () => {
    const d = devices({ diskBus: 'scsi', disks: disks(2) });
    expect(d.filter((x) => x.startsWith('virtio-scsi-pci'))).toEqual(['virtio-scsi-pci,id=scsi0']);
    expect(d).toContain('scsi-hd,id=scsi-disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,drive=disk0,bootindex=1');
    expect(d).toContain('scsi-hd,id=scsi-disk1,bus=scsi0.0,channel=0,scsi-id=1,lun=0,drive=disk1,bootindex=2');
    expect(devices({ diskBus: 'scsi' }).some((x) => x.startsWith('virtio-scsi-pci'))).toBe(false);
  });

  it('the CD-ROM units leave room for the cloud-init seed on both machines', () => {
    for (const m of ['q35', 'pc'] as const) {
      const u = CDROM_UNITS[m];
      expect(new Set([u.iso, u.seed, u.drivers]).size).toBe(3);
    }
  });
});

describe('buildArgv: NIC model', () => {
  it.each([
    ['virtio', 'virtio-net-pci'],
    ['e1000e', 'e1000e'],
    ['rtl8139', 'rtl8139'],
  ] as const)('%s → %s', (model, device) => {
    const nics = devices({ nicModel: model }).filter((x) => x.includes('netdev=net0'));
    expect(nics).toEqual([`${device},id=nic0,netdev=net0,mac=52:54:00:aa:bb:cc`]);
  });
});

describe('buildArgv: boot order', () => {
  it('strict: devices left out get no bootindex', () => {
    expect(after(buildArgv(base), '-boot')).toEqual(['strict=on']);
    const d = devices({ disks: disks(2), bootOrder: ['cdrom'] });
    expect(d).toContain('ide-cd,id=cd0,bus=ide.0,bootindex=1');
    expect(d).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0');
    expect(d).toContain('virtio-blk-pci,id=virtio-disk1,drive=disk1');
    expect(d.some((x) => x.includes('nic0') && x.includes('bootindex'))).toBe(false);
  });

  it('cdrom, network, disk: the CD-ROM 1, the NIC 2, the disks 3.. in attach order', () => {
    const d = devices({ disks: disks(2), iso: { fd: 40 }, bootOrder: ['cdrom', 'network', 'disk'] });
    expect(d).toContain('ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=1');
    expect(d).toContain('virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:aa:bb:cc,bootindex=2');
    expect(d).toContain('virtio-blk-pci,id=virtio-disk0,drive=disk0,bootindex=3');
    expect(d).toContain('virtio-blk-pci,id=virtio-disk1,drive=disk1,bootindex=4');
  });

  it('the same order on SATA and SCSI disks; a repeated device is refused', () => {
    expect(devices({ diskBus: 'sata', disks: disks(1), bootOrder: ['network', 'disk'] })).toContain('ide-hd,id=sata-disk0,bus=ide.1,drive=disk0,bootindex=2');
    expect(devices({ diskBus: 'scsi', disks: disks(1), bootOrder: ['cdrom', 'disk'] })).toContain('scsi-hd,id=scsi-disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,drive=disk0,bootindex=2');
    expect(() => buildArgv({ ...base, bootOrder: ['disk', 'disk'] })).toThrow(/at most once/);
  });
});

describe('buildArgv: drivers CD-ROM', () => {
  it('a second read-only CD-ROM by descriptor, never booted from', () => {
    const argv = buildArgv({ ...base, iso: { fd: 40 }, driversIso: { fd: 41 } });
    expect(argv).toContain('fd=41,set=41');
    const node = after(argv, '-blockdev').map((b) => JSON.parse(b) as Record<string, unknown>).find((b) => b['node-name'] === 'drivers-media');
    expect(node).toEqual({ driver: 'raw', 'node-name': 'drivers-media', 'read-only': true, file: { driver: 'file', filename: '/dev/fdset/41', 'read-only': true } });
    const cd = after(argv, '-device').filter((x) => x.startsWith('ide-cd,id=drivers-cd'));
    expect(cd).toEqual(['ide-cd,id=drivers-cd,bus=ide.2,drive=drivers-media']);
    expect(() => buildArgv({ ...base, iso: { fd: 40 }, driversIso: { fd: 40 } })).toThrow(/distinct/);
    expect(devices({}).some((x) => x.includes('drivers-cd'))).toBe(false);
  });
});
