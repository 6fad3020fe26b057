/**
 * Pure translation of a VM's configuration into a QEMU argv. No I/O here: everything the command
 * needs is in the input, so it is unit-tested exactly.
 *
 * QEMU never opens an image or a log by path: the server opens them and QEMU inherits the
 * descriptors (child fd N, added to fd set N with -add-fd; the block layer and the chardev open
 * `/dev/fdset/N`). Every qcow2/vmdk node names its backing node or `null`, so QEMU never follows a
 * backing file name written in an image header. The QemuOpts values that carry paths (the QMP
 * and VNC sockets) have their commas doubled, which is QemuOpts' escape.
 */
interface ArgvLayer {
  /** Image format of this layer (qcow2, raw, vmdk, ...), never probed by QEMU. */
  format: string;
  /** The descriptor number QEMU inherits this layer's file as (also its fd set id). */
  fd: number;
}

interface ArgvDisk {
  /** The image first, then its backing layers in order (each opened read-only). */
  layers: readonly ArgvLayer[];
}

/** Where a VM's VNC server listens: a unix socket (default) or TCP on 127.0.0.1 (VNC_TCP=1). */
type ArgvVnc = { socket: string } | { display: number };

export interface ArgvInput {
  qemuBinary: string;
  vmId: string;
  name: string;
  cpus: number;
  memoryMiB: number;
  mac: string;
  vnc: ArgvVnc;
  accel: 'kvm' | 'tcg';
  disks: readonly ArgvDisk[];
  /** The CD medium's inherited descriptor number, or null for an empty drive. */
  iso: { fd: number } | null;
  qmpSocket: string;
  pidFile: string;
  /** The serial log's inherited descriptor number (opened for appending by the server). */
  serialFd: number;
  /**
   * UEFI (issue 12): the firmware code (raw, read-only) and the VM's own variable store (qcow2,
   * so snapshots with memory work) as inherited descriptors; absent: BIOS.
   */
  uefi?: { codeFd: number; varsFd: number; secureBoot: boolean } | null;
  /** A TPM 2.0 (issue 12): the control socket of the VM's swtpm; absent: none. */
  tpm?: { socket: string } | null;
  /** Cloud-init (issue 12): the NoCloud seed volume's inherited descriptor (read-only CD-ROM); absent: none. */
  seed?: { fd: number } | null;
}

/** Escapes a value for a QemuOpts list (`key=value,...`): a comma is written as two commas. */
export function qemuOptValue(value: string): string {
  return value.replace(/,/g, ',,');
}

const BLOCK_DRIVERS = new Set(['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed']);
/** Formats that can name a backing file in their header: their nodes always get `backing`. */
const COW_DRIVERS = new Set(['qcow2', 'vmdk', 'qed']);

function fdFile(fd: number, readOnly: boolean): Record<string, unknown> {
  return { driver: 'file', filename: `/dev/fdset/${fd}`, ...(readOnly ? { 'read-only': true } : { discard: 'unmap' }) };
}

/** The -blockdev JSON of a disk: its format node over its file, with the backing chain nested. */
function diskNode(layers: readonly ArgvLayer[], nodeName: string): Record<string, unknown> {
  const node = (i: number): Record<string, unknown> => {
    const layer = layers[i]!;
    if (!BLOCK_DRIVERS.has(layer.format)) throw new Error(`unsupported image format ${layer.format}`);
    const top = i === 0;
    const below = i + 1 < layers.length ? node(i + 1) : null;
    if (below && !COW_DRIVERS.has(layer.format)) throw new Error(`a ${layer.format} image cannot have a backing layer`);
    return {
      driver: layer.format,
      'node-name': top ? nodeName : `${nodeName}-b${i}`,
      ...(top ? { discard: 'unmap' } : { 'read-only': true }),
      file: fdFile(layer.fd, !top),
      ...(COW_DRIVERS.has(layer.format) ? { backing: below } : {}),
    };
  };
  if (layers.length === 0) throw new Error('a disk needs at least one layer');
  return node(0);
}

export function buildArgv(input: ArgvInput): string[] {
  const argv: string[] = [input.qemuBinary];
  const add = (...a: string[]) => argv.push(...a);

  add('-name', `guest=${qemuOptValue(input.name)},debug-threads=on`);
  add('-uuid', input.vmId);
  const uefi = input.uefi ?? null;
  // UEFI: the firmware is two pflash devices over the nodes below; Secure Boot needs SMM, and the
  // variable store writable only from SMM (the cfi.pflash01 secure property).
  add('-machine', uefi ? `q35${uefi.secureBoot ? ',smm=on' : ''},pflash0=fw-code,pflash1=fw-vars` : 'q35');
  if (uefi?.secureBoot) add('-global', 'driver=cfi.pflash01,property=secure,value=on');
  add('-accel', input.accel);
  add('-cpu', input.accel === 'kvm' ? 'host' : 'max');
  add('-smp', String(input.cpus));
  add('-m', String(input.memoryMiB));
  add('-nodefaults', '-no-user-config');
  add('-display', 'none');
  add('-vnc', 'socket' in input.vnc ? `unix:${qemuOptValue(input.vnc.socket)}` : `127.0.0.1:${input.vnc.display}`);
  add('-device', 'VGA,id=video0');
  add('-device', 'qemu-xhci,id=usb', '-device', 'usb-tablet,id=tablet0,bus=usb.0');
  add('-chardev', `socket,id=qmp,path=${qemuOptValue(input.qmpSocket)},server=on,wait=off`);
  add('-mon', 'chardev=qmp,mode=control');
  const fds = [
    input.serialFd,
    ...input.disks.flatMap((d) => d.layers.map((l) => l.fd)),
    ...(input.iso ? [input.iso.fd] : []),
    ...(uefi ? [uefi.codeFd, uefi.varsFd] : []),
    ...(input.seed ? [input.seed.fd] : []), // cloud-init (issue 12)
  ];
  if (new Set(fds).size !== fds.length || fds.some((fd) => !Number.isInteger(fd) || fd < 3)) throw new Error('descriptor numbers must be distinct and from 3 up');
  for (const fd of fds) add('-add-fd', `fd=${fd},set=${fd}`);
  if (uefi) {
    add('-blockdev', JSON.stringify({ driver: 'raw', 'node-name': 'fw-code', 'read-only': true, file: fdFile(uefi.codeFd, true) }));
    // Never follows a backing file name: the store is a plain qcow2 the server made.
    add('-blockdev', JSON.stringify({ driver: 'qcow2', 'node-name': 'fw-vars', file: fdFile(uefi.varsFd, false), backing: null }));
  }
  if (input.tpm) {
    add('-chardev', `socket,id=chrtpm,path=${qemuOptValue(input.tpm.socket)}`);
    add('-tpmdev', 'emulator,id=tpm0,chardev=chrtpm');
    add('-device', 'tpm-crb,tpmdev=tpm0');
  }
  add('-chardev', `file,id=serial0,path=/dev/fdset/${input.serialFd}`);
  add('-serial', 'chardev:serial0');
  add('-netdev', 'user,id=net0');
  add('-device', `virtio-net-pci,id=nic0,netdev=net0,mac=${input.mac}`);

  // Disks boot first, in attach order; the CD-ROM comes after them, so a blank disk falls through
  // to the installer and an installed disk boots even with the ISO left in.
  input.disks.forEach((disk, i) => {
    add('-blockdev', JSON.stringify(diskNode(disk.layers, `disk${i}`)));
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
        file: fdFile(input.iso.fd, true),
      }),
    );
    add('-device', `ide-cd,id=cd0,bus=ide.0,drive=cd0-media,bootindex=${cdBoot}`);
  } else {
    add('-device', `ide-cd,id=cd0,bus=ide.0,bootindex=${cdBoot}`);
  }

  // Cloud-init (issue 12): the NoCloud seed as a second, read-only CD-ROM with no boot index
  // (never booted from; the guest's cloud-init finds it by its `cidata` label).
  if (input.seed) {
    add('-blockdev', JSON.stringify({ driver: 'raw', 'node-name': 'cd-seed-media', 'read-only': true, file: fdFile(input.seed.fd, true) }));
    add('-device', 'ide-cd,id=cd-seed,bus=ide.1,drive=cd-seed-media');
  }

  add('-pidfile', input.pidFile);
  // seccomp: no obsolete syscalls, no set*id, no fork/exec, no scheduler/affinity changes.
  add('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  return argv;
}
