/**
 * Pure translation of a VM's configuration into a QEMU argv. No I/O here: everything the command
 * needs is in the input, so it is unit-tested exactly.
 *
 * Paths never become options: images are given to -blockdev as JSON, and the few QemuOpts values
 * that carry paths (chardev paths) have their commas doubled, which is QemuOpts' escape.
 */
export interface ArgvDisk {
  path: string;
  /** Image format as reported by qemu-img info (qcow2, raw, vmdk, ...). */
  format: string;
}

export interface ArgvInput {
  qemuBinary: string;
  vmId: string;
  name: string;
  cpus: number;
  memoryMiB: number;
  mac: string;
  vncDisplay: number;
  accel: 'kvm' | 'tcg';
  disks: readonly ArgvDisk[];
  iso: string | null;
  qmpSocket: string;
  pidFile: string;
  serialLog: string;
}

/** Escapes a value for a QemuOpts list (`key=value,...`): a comma is written as two commas. */
export function qemuOptValue(value: string): string {
  return value.replace(/,/g, ',,');
}

const BLOCK_DRIVERS = new Set(['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed']);

export function buildArgv(input: ArgvInput): string[] {
  const argv: string[] = [input.qemuBinary];
  const add = (...a: string[]) => argv.push(...a);

  add('-name', `guest=${qemuOptValue(input.name)},debug-threads=on`);
  add('-uuid', input.vmId);
  add('-machine', 'q35');
  add('-accel', input.accel);
  add('-cpu', input.accel === 'kvm' ? 'host' : 'max');
  add('-smp', String(input.cpus));
  add('-m', String(input.memoryMiB));
  add('-nodefaults', '-no-user-config');
  add('-display', 'none');
  add('-vnc', `127.0.0.1:${input.vncDisplay}`);
  add('-device', 'VGA,id=video0');
  add('-device', 'qemu-xhci,id=usb', '-device', 'usb-tablet,id=tablet0,bus=usb.0');
  add('-chardev', `socket,id=qmp,path=${qemuOptValue(input.qmpSocket)},server=on,wait=off`);
  add('-mon', 'chardev=qmp,mode=control');
  add('-chardev', `file,id=serial0,path=${qemuOptValue(input.serialLog)}`);
  add('-serial', 'chardev:serial0');
  add('-netdev', 'user,id=net0');
  add('-device', `virtio-net-pci,id=nic0,netdev=net0,mac=${input.mac}`);

  // Disks boot first, in attach order; the CD-ROM comes after them, so a blank disk falls through
  // to the installer and an installed disk boots even with the ISO left in.
  input.disks.forEach((disk, i) => {
    if (!BLOCK_DRIVERS.has(disk.format)) throw new Error(`unsupported image format ${disk.format}`);
    add(
      '-blockdev',
      JSON.stringify({
        driver: disk.format,
        'node-name': `disk${i}`,
        discard: 'unmap',
        file: { driver: 'file', filename: disk.path, discard: 'unmap' },
      }),
    );
    add('-device', `virtio-blk-pci,id=virtio-disk${i},drive=disk${i},bootindex=${i + 1}`);
  });

  // The CD-ROM drive always exists, so media can be inserted and ejected live over QMP.
  const cdBoot = input.disks.length + 1;
  if (input.iso) {
    add(
      '-blockdev',
      JSON.stringify({
        driver: 'raw',
        'node-name': 'cd0-media',
        'read-only': true,
        file: { driver: 'file', filename: input.iso, 'read-only': true },
      }),
    );
    add('-device', `ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=${cdBoot}`);
  } else {
    add('-device', `ide-cd,id=cd0,bus=ide.0,bootindex=${cdBoot}`);
  }

  add('-pidfile', input.pidFile);
  // seccomp: no obsolete syscalls, no set*id, no fork/exec, no scheduler/affinity changes.
  add('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  return argv;
}

/** A random, locally administered MAC in QEMU's 52:54:00 range; the caller keeps it unique. */
export function randomMac(random: (n: number) => Buffer): string {
  return `52:54:00:${[...random(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}
