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
  /**
   * The first serial port as a file chardev on this inherited descriptor (a log only). Used when
   * `serialSocket` is absent.
   */
  serialFd?: number;
  /** Serial console (issue 14): the first serial port as a unix socket chardev QEMU serves here (server=on, wait=off). */
  serialSocket?: string;
  /**
   * UEFI (issue 12): the firmware code (raw, read-only) and the VM's own variable store (qcow2,
   * so snapshots with memory work) as inherited descriptors; absent: BIOS.
   */
  uefi?: { codeFd: number; varsFd: number; secureBoot: boolean } | null;
  /** A TPM 2.0 (issue 12): the control socket of the VM's swtpm; absent: none. */
  tpm?: { socket: string } | null;
  // hardware options (issue 12); absent: q35, virtio disks and NIC, boot from the disks then the CD-ROM
  machine?: ArgvMachine;
  diskBus?: ArgvDiskBus;
  nicModel?: ArgvNicModel;
  /** Boot devices in order; the ones left out get no bootindex (and `-boot strict=on` skips them). */
  bootOrder?: readonly ArgvBootDevice[];
  /** A second, read-only CD-ROM (e.g. the virtio-win drivers ISO) as an inherited descriptor; never booted. */
  driversIso?: { fd: number } | null;
  /** Cloud-init (issue 12): the NoCloud seed volume's inherited descriptor (read-only CD-ROM); absent: none. */
  seed?: { fd: number } | null;
  /** The guest agent (issue 14): where QEMU serves the virtio-serial port org.qemu.guest_agent.0; absent: no channel. */
  agentSocket?: string;
  /** Metrics (issue 14): a virtio balloon device (`balloon0`), so the guest's own memory figures can be asked for; absent: none. */
  balloon?: boolean;
  /**
   * Networks (issue 11): the NICs in any order (slots 0..7, each at most once). Absent: one
   * user-mode NIC `net0`/`nic0` with `mac` and `nicModel` (what every VM had before networks).
   * Given (also empty), the machine gets the PCIe root ports hot-plug needs on q35 (see nicLayout).
   */
  nics?: readonly ArgvNic[];
}

// networks (issue 11)
/** A user-mode forward: QEMU listens on hostAddress:hostPort (IPv4) and connects to the guest's guestPort. */
export interface ArgvForward {
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

/** One NIC: its slot names it (`net<slot>`, `nic<slot>`); its backend is QEMU's user-mode NAT or a tap the server made. */
export interface ArgvNic {
  slot: number;
  model: ArgvNicModel;
  mac: string;
  backend: { type: 'user'; forwards: readonly ArgvForward[] } | { type: 'tap'; ifname: string };
}

export type ArgvMachine = 'q35' | 'pc';
export type ArgvDiskBus = 'virtio' | 'sata' | 'scsi';
export type ArgvNicModel = 'virtio' | 'e1000e' | 'rtl8139';
export type ArgvBootDevice = 'disk' | 'cdrom' | 'network';

const NIC_DEVICES: Readonly<Record<ArgvNicModel, string>> = { virtio: 'virtio-net-pci', e1000e: 'e1000e', rtl8139: 'rtl8139' };

/**
 * The IDE/SATA units of each machine, in the order the guest scans them: q35's ICH9 AHCI has six
 * ports (`ide.0`..`ide.5`, one device each); pc's PIIX IDE two channels of two units.
 */
const IDE_UNITS: Readonly<Record<ArgvMachine, readonly string[]>> = {
  q35: ['bus=ide.0', 'bus=ide.1', 'bus=ide.2', 'bus=ide.3', 'bus=ide.4', 'bus=ide.5'],
  pc: ['bus=ide.0,unit=0', 'bus=ide.0,unit=1', 'bus=ide.1,unit=0', 'bus=ide.1,unit=1'],
};

/**
 * The fixed unit (an index into IDE_UNITS) of each CD-ROM drive: the ISO drive, the cloud-init
 * seed and the drivers CD-ROM. On q35 ports 0, 1, 2; on pc the secondary channel's two units for
 * the ISO drive and the seed and the primary slave for the drivers CD-ROM (the primary master is
 * left to the first IDE disk). SATA/IDE disks take the units no present CD-ROM takes, in order.
 */
export const CDROM_UNITS: Readonly<Record<ArgvMachine, Readonly<Record<'iso' | 'seed' | 'drivers', number>>>> = {
  q35: { iso: 0, seed: 1, drivers: 2 },
  pc: { iso: 2, seed: 3, drivers: 1 },
};

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
  const machine = input.machine ?? 'q35';
  if (uefi?.secureBoot && machine !== 'q35') throw new Error('Secure Boot needs the q35 machine (SMM)');
  add('-machine', uefi ? `${machine}${uefi.secureBoot ? ',smm=on' : ''},pflash0=fw-code,pflash1=fw-vars` : machine);
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
  const serialFds = input.serialSocket === undefined && input.serialFd !== undefined ? [input.serialFd] : [];
  const fds = [
    ...serialFds,
    ...input.disks.flatMap((d) => d.layers.map((l) => l.fd)),
    ...(input.iso ? [input.iso.fd] : []),
    ...(uefi ? [uefi.codeFd, uefi.varsFd] : []),
    ...(input.driversIso ? [input.driversIso.fd] : []),
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
  if (input.serialSocket !== undefined) add('-chardev', `socket,id=serial0,path=${qemuOptValue(input.serialSocket)},server=on,wait=off`);
  else if (input.serialFd !== undefined) add('-chardev', `file,id=serial0,path=/dev/fdset/${input.serialFd}`);
  else add('-chardev', 'null,id=serial0');
  add('-serial', 'chardev:serial0');
  // Boot order (issue 12): bootindex values in the order asked (every disk in attach order, the
  // CD-ROM, the NIC); a device left out gets none and, with strict, is never booted from.
  const order = input.bootOrder ?? ['disk', 'cdrom'];
  if (order.length === 0 || new Set(order).size !== order.length) throw new Error('the boot order must name each device at most once');
  let nextIndex = 1;
  const bootIndex = new Map<string, number>();
  for (const dev of order) {
    if (dev === 'disk') input.disks.forEach((_, i) => bootIndex.set(`disk${i}`, nextIndex++));
    else bootIndex.set(dev, nextIndex++);
  }
  const boot = (key: string) => (bootIndex.has(key) ? `,bootindex=${bootIndex.get(key)}` : '');
  add('-boot', 'strict=on');

  // Networks (issue 11): slot 0 sits where the single NIC always was; the others come last (below).
  const nics = input.nics === undefined ? null : checkNics(input.nics);
  const firstNic = nics?.[0]?.slot ?? null;
  const nicArgs = (nic: ArgvNic, bus: string | null) => {
    add('-netdev', netdevArg(nic));
    add('-device', `${nicDeviceArg(nic, bus)}${nic.slot === firstNic ? boot('network') : ''}`);
  };
  if (nics === null) {
    add('-netdev', 'user,id=net0');
    add('-device', `${NIC_DEVICES[input.nicModel ?? 'virtio']},id=nic0,netdev=net0,mac=${input.mac}${boot('network')}`);
  } else {
    const nic0 = nics.find((n) => n.slot === 0);
    if (nic0) nicArgs(nic0, null);
  }

  // The IDE/SATA units: the CD-ROMs have fixed ones, SATA disks take the rest in order.
  const units = IDE_UNITS[machine];
  const cdUnits = CDROM_UNITS[machine];
  const taken = new Set<number>([cdUnits.iso, ...(input.driversIso ? [cdUnits.drivers] : []), ...(input.seed ? [cdUnits.seed] : [])]);
  const diskBus = input.diskBus ?? 'virtio';
  const free = units.map((_, i) => i).filter((i) => !taken.has(i));
  if (diskBus === 'sata' && input.disks.length > free.length) {
    throw new Error(
      `${input.disks.length} SATA disks and ${taken.size} CD-ROMs do not fit the ${units.length} ${machine === 'q35' ? 'SATA ports' : 'IDE units'} of the ${machine} machine`,
    );
  }
  if (diskBus === 'scsi' && input.disks.length > 0) add('-device', 'virtio-scsi-pci,id=scsi0');
  input.disks.forEach((disk, i) => {
    add('-blockdev', JSON.stringify(diskNode(disk.layers, `disk${i}`)));
    if (diskBus === 'virtio') add('-device', `virtio-blk-pci,id=virtio-disk${i},drive=disk${i}${boot(`disk${i}`)}`);
    else if (diskBus === 'scsi') add('-device', `scsi-hd,id=scsi-disk${i},bus=scsi0.0,channel=0,scsi-id=${i},lun=0,drive=disk${i}${boot(`disk${i}`)}`);
    else add('-device', `ide-hd,id=sata-disk${i},${units[free[i]!]!},drive=disk${i}${boot(`disk${i}`)}`);
  });

  // The CD-ROM drive always exists, so media can be inserted and ejected live over QMP.
  const cdUnit = units[cdUnits.iso]!;
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
    add('-device', `ide-cd,id=cd0,${cdUnit},drive=cd0-media${boot('cdrom')}`);
  } else {
    add('-device', `ide-cd,id=cd0,${cdUnit}${boot('cdrom')}`);
  }
  // The drivers CD-ROM (issue 12): read-only, never booted from.
  if (input.driversIso) {
    add('-blockdev', JSON.stringify({ driver: 'raw', 'node-name': 'drivers-media', 'read-only': true, file: fdFile(input.driversIso.fd, true) }));
    add('-device', `ide-cd,id=drivers-cd,${units[cdUnits.drivers]!},drive=drivers-media`);
  }

  // Cloud-init (issue 12): the NoCloud seed as a second, read-only CD-ROM with no boot index
  // (never booted from; the guest's cloud-init finds it by its `cidata` label).
  if (input.seed) {
    add('-blockdev', JSON.stringify({ driver: 'raw', 'node-name': 'cd-seed-media', 'read-only': true, file: fdFile(input.seed.fd, true) }));
    add('-device', `ide-cd,id=cd-seed,${units[cdUnits.seed]!},drive=cd-seed-media`);
  }

  // Alerts (issue 14): the ISA pvpanic device (no PCI slot), so a guest panic is reported (GUEST_PANICKED).
  add('-device', 'pvpanic');

  // The guest agent (issue 14): a virtio-serial port whose host side is a listening socket. Last
  // of the devices, so the PCI slots of the others stay where they were.
  if (input.agentSocket !== undefined) {
    add('-device', 'virtio-serial-pci,id=vserial0');
    add('-chardev', `socket,id=qga0,path=${qemuOptValue(input.agentSocket)},server=on,wait=off`);
    add('-device', 'virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0');
  }
  // Metrics (issue 14): the balloon is never inflated by the server; its statistics queue gives the
  // guest's view of its memory. After the agent's devices, so their PCI slots stay where they were.
  if (input.balloon) add('-device', 'virtio-balloon-pci,id=balloon0');

  // Networks (issue 11): the NICs of slots 1..7 and, on q35, the root ports they and later
  // hot-plugged NICs sit in, after every other device, so adding a NIC never moves another one.
  if (nics !== null) {
    const layout = nicLayout(machine, nics.map((n) => n.slot));
    for (const slot of layout.rootPorts) add('-device', `pcie-root-port,id=${rootPortId(slot)},chassis=${slot + 1},slot=${slot + 1}`);
    for (const nic of nics) if (nic.slot !== 0) nicArgs(nic, layout.bus(nic.slot));
  }

  add('-pidfile', input.pidFile);
  // seccomp: no obsolete syscalls, no set*id, no fork/exec, no scheduler/affinity changes.
  add('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  return argv;
}

// --- networks (issue 11) -------------------------------------------------------------------

/** NIC slots per VM: 0..7. */
export const NIC_SLOTS = 8;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
/** A NIC's tap: `qm-` + 8 hex digits + `.` + slot (runtime/port.ts tapName). */
const TAP_RE = /^qm-[0-9a-f]{8}\.[0-7]$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Refuses a forward that is not an IPv4 host address and two ports 1..65535. */
function checkForward(f: ArgvForward): void {
  if (f.protocol !== 'tcp' && f.protocol !== 'udp') throw new Error(`a forward's protocol must be tcp or udp, not ${String(f.protocol)}`);
  if (typeof f.hostAddress !== 'string' || !IPV4_RE.test(f.hostAddress)) throw new Error(`a forward's host address must be an IPv4 address, not ${JSON.stringify(f.hostAddress)}`);
  if (!isPort(f.hostPort) || !isPort(f.guestPort)) throw new Error(`a forward's ports must be integers 1..65535 (${String(f.hostPort)} -> ${String(f.guestPort)})`);
}

/** Refuses a NIC that is not well-formed (slot, model, MAC, tap name, forwards). */
export function checkNic(nic: ArgvNic): void {
  if (!Number.isInteger(nic.slot) || nic.slot < 0 || nic.slot >= NIC_SLOTS) throw new Error(`a NIC slot must be 0..${NIC_SLOTS - 1}, not ${String(nic.slot)}`);
  if (!Object.hasOwn(NIC_DEVICES, nic.model)) throw new Error(`unknown NIC model ${String(nic.model)}`);
  if (typeof nic.mac !== 'string' || !MAC_RE.test(nic.mac)) throw new Error(`a NIC's MAC must be six hex pairs, not ${JSON.stringify(nic.mac)}`);
  if (nic.backend.type === 'user') {
    nic.backend.forwards.forEach(checkForward);
  } else if (nic.backend.type === 'tap') {
    if (typeof nic.backend.ifname !== 'string' || !TAP_RE.test(nic.backend.ifname)) throw new Error(`not a tap name of ours: ${JSON.stringify(nic.backend.ifname)}`);
  } else {
    throw new Error('unknown NIC backend');
  }
}

/** The NICs checked and in slot order; two NICs in one slot are refused. */
function checkNics(nics: readonly ArgvNic[]): ArgvNic[] {
  nics.forEach(checkNic);
  const sorted = [...nics].sort((a, b) => a.slot - b.slot);
  if (new Set(sorted.map((n) => n.slot)).size !== sorted.length) throw new Error('two NICs in one slot');
  return sorted;
}

/** A forward as QEMU's hostfwd rule (`tcp:127.0.0.1:8080-:80`), the same for -netdev and HMP hostfwd_add. */
export function hostfwdRule(f: ArgvForward): string {
  checkForward(f);
  return `${f.protocol}:${f.hostAddress}:${f.hostPort}-:${f.guestPort}`;
}

/** The host side of a forward as HMP hostfwd_remove names it (`tcp:127.0.0.1:8080`). */
export function hostfwdHostSide(f: Pick<ArgvForward, 'protocol' | 'hostAddress' | 'hostPort'>): string {
  checkForward({ ...f, guestPort: 1 });
  return `${f.protocol}:${f.hostAddress}:${f.hostPort}`;
}

/** The PCIe root port of a slot on q35 (`rp-nic<slot>`). */
export function rootPortId(slot: number): string {
  return `rp-nic${slot}`;
}

/**
 * Where a VM's NICs sit on the PCI bus. Slot 0 takes the place the single NIC always had (on the
 * root bus). pc: every other NIC on pci.0 too (hot-pluggable there, ACPI). q35: the root bus
 * cannot hot-plug, so every slot but a slot 0 present at start gets a PCIe root port of its own
 * (`rp-nic<slot>`), at start and at hot-plug alike, so a NIC has the same address either way
 * and can be unplugged. A slot 0 NIC started on q35's root bus stays until the VM stops.
 */
export function nicLayout(machine: ArgvMachine, startSlots: readonly number[]): { rootPorts: number[]; bus: (slot: number) => string | null } {
  if (machine === 'pc') return { rootPorts: [], bus: () => null };
  const rootPorts = [...Array(NIC_SLOTS).keys()].filter((s) => s !== 0 || !startSlots.includes(0));
  return { rootPorts, bus: (slot) => (rootPorts.includes(slot) ? rootPortId(slot) : null) };
}

/** The -netdev of a NIC. */
function netdevArg(nic: ArgvNic): string {
  if (nic.backend.type === 'tap') return `tap,id=net${nic.slot},ifname=${qemuOptValue(nic.backend.ifname)},script=no,downscript=no`;
  return [`user,id=net${nic.slot}`, ...nic.backend.forwards.map((f) => `hostfwd=${qemuOptValue(hostfwdRule(f))}`)].join(',');
}

/** The -device of a NIC (without a boot index). */
function nicDeviceArg(nic: ArgvNic, bus: string | null): string {
  return `${NIC_DEVICES[nic.model]},id=nic${nic.slot},netdev=net${nic.slot},mac=${nic.mac}${bus ? `,bus=${bus}` : ''}`;
}

/** The QMP netdev_add arguments of a NIC (the same backend -netdev gives at start). */
export function netdevAddArgs(nic: ArgvNic): Record<string, unknown> {
  checkNic(nic);
  if (nic.backend.type === 'tap') return { type: 'tap', id: `net${nic.slot}`, ifname: nic.backend.ifname, script: 'no', downscript: 'no' };
  return { type: 'user', id: `net${nic.slot}`, ...(nic.backend.forwards.length ? { hostfwd: nic.backend.forwards.map((f) => ({ str: hostfwdRule(f) })) } : {}) };
}

/** The QMP device_add arguments of a NIC hot-plugged into a VM of `machine` (q35: into its root port). */
export function nicDeviceAddArgs(nic: ArgvNic, machine: ArgvMachine): Record<string, unknown> {
  checkNic(nic);
  const bus = machine === 'q35' ? rootPortId(nic.slot) : null;
  return { driver: NIC_DEVICES[nic.model], id: `nic${nic.slot}`, netdev: `net${nic.slot}`, mac: nic.mac, ...(bus ? { bus } : {}) };
}
