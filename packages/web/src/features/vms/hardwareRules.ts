// Hardware options (issue 12): the OS presets, the rules between the fields (Secure Boot needs
// UEFI and q35), the boot order list and the one-line summary. Pure functions, used by the create
// dialog and the VM page's Hardware section.
import type { BootDevice, HardwareBody, Iso, NicModel, OsType, Vm, VmDiskBus, VmFirmware, VmMachine } from '@qemu-manager/contract';
import { t } from '../../i18n';

export const BOOT_DEVICES: readonly BootDevice[] = ['disk', 'cdrom', 'network'];
export const FIRMWARES: readonly VmFirmware[] = ['bios', 'uefi'];
export const MACHINES: readonly VmMachine[] = ['q35', 'pc'];
export const DISK_BUSES: readonly VmDiskBus[] = ['virtio', 'sata', 'scsi'];
export const NIC_MODELS: readonly NicModel[] = ['virtio', 'e1000e', 'rtl8139'];
export const OS_TYPES: readonly OsType[] = ['linux', 'windows', 'other'];

/** One row of the boot order editor: every device is listed; the unchecked ones are not booted from. */
export interface BootEntry {
  device: BootDevice;
  on: boolean;
}

export interface HardwareDraft {
  osType: OsType;
  firmware: VmFirmware;
  secureBoot: boolean;
  tpm: boolean;
  machine: VmMachine;
  diskBus: VmDiskBus;
  nicModel: NicModel;
  boot: BootEntry[];
  driversIso: string | null;
}

/** The server's defaults (and the `other` preset): BIOS, no Secure Boot, no TPM, q35, virtio, disk then CD-ROM. */
export const DEFAULT_DRAFT: HardwareDraft = {
  osType: 'other',
  firmware: 'bios',
  secureBoot: false,
  tpm: false,
  machine: 'q35',
  diskBus: 'virtio',
  nicModel: 'virtio',
  boot: bootEntries(['disk', 'cdrom']),
  driversIso: null,
};

/** The checked devices in order first, then the others (unchecked) in their usual order. */
export function bootEntries(order: readonly BootDevice[]): BootEntry[] {
  return [...order.map((device) => ({ device, on: true })), ...BOOT_DEVICES.filter((d) => !order.includes(d)).map((device) => ({ device, on: false }))];
}

export const bootOrderOf = (boot: readonly BootEntry[]): BootDevice[] => boot.filter((b) => b.on).map((b) => b.device);

/** Move the entry at `index` one place up (-1) or down (+1); out of range is no change. */
export function moveBoot(boot: readonly BootEntry[], index: number, by: -1 | 1): BootEntry[] {
  const to = index + by;
  if (index < 0 || index >= boot.length || to < 0 || to >= boot.length) return boot.slice();
  const next = boot.slice();
  [next[index], next[to]] = [next[to]!, next[index]!];
  return next;
}

export function toggleBoot(boot: readonly BootEntry[], index: number, on: boolean): BootEntry[] {
  return boot.map((b, i) => (i === index ? { ...b, on } : b));
}

/** The virtio-win drivers ISO of the ISO library, if it has one (by name). */
export function findDriversIso(isos: readonly Iso[] | undefined): Iso | null {
  return isos?.find((i) => /virtio-?win/i.test(i.name)) ?? null;
}

/** The preset's values: windows = UEFI + Secure Boot + TPM + SATA + e1000e (+ virtio-win); linux = virtio; other = defaults. */
export function presetFor(osType: OsType, isos?: readonly Iso[]): HardwareDraft {
  if (osType === 'windows') {
    return {
      ...DEFAULT_DRAFT, osType, firmware: 'uefi', secureBoot: true, tpm: true, machine: 'q35', diskBus: 'sata', nicModel: 'e1000e',
      driversIso: findDriversIso(isos)?.path ?? null,
    };
  }
  if (osType === 'linux') return { ...DEFAULT_DRAFT, osType, diskBus: 'virtio', nicModel: 'virtio' };
  return { ...DEFAULT_DRAFT, osType };
}

/** Whether Secure Boot can be chosen with this firmware and machine (OVMF's Secure Boot build needs q35). */
export const secureBootPossible = (d: Pick<HardwareDraft, 'firmware' | 'machine'>): boolean => d.firmware === 'uefi' && d.machine === 'q35';

/** Apply a change, keeping the draft consistent: Secure Boot goes off when BIOS or `pc` is chosen. */
export function changeDraft(d: HardwareDraft, patch: Partial<HardwareDraft>): HardwareDraft {
  const next = { ...d, ...patch };
  if (!secureBootPossible(next)) next.secureBoot = false;
  return next;
}

export type HardwareError = 'secureBoot' | 'bootOrder';

/** What is wrong with a draft (none when it can be sent). */
export function hardwareErrors(d: HardwareDraft): HardwareError[] {
  const e: HardwareError[] = [];
  if (d.secureBoot && !secureBootPossible(d)) e.push('secureBoot');
  if (bootOrderOf(d.boot).length === 0) e.push('bootOrder');
  return e;
}

type HardwareValues = Required<HardwareBody>;

/** Every field, as POST /api/vms takes them. */
export function hardwareValues(d: HardwareDraft): HardwareValues {
  return {
    osType: d.osType, firmware: d.firmware, secureBoot: d.secureBoot, tpm: d.tpm, machine: d.machine, diskBus: d.diskBus, nicModel: d.nicModel,
    bootOrder: bootOrderOf(d.boot), driversIso: d.driversIso,
  };
}

export function draftOfVm(vm: Vm): HardwareDraft {
  return {
    osType: vm.osType, firmware: vm.firmware, secureBoot: vm.secureBoot, tpm: vm.tpm, machine: vm.machine, diskBus: vm.diskBus, nicModel: vm.nicModel,
    boot: bootEntries(vm.bootOrder), driversIso: vm.driversIso,
  };
}

/** The PUT /api/vms/{id}/hardware body: only what differs from the VM (null when nothing does). */
export function hardwareChange(d: HardwareDraft, vm: Vm): HardwareBody | null {
  const want = hardwareValues(d);
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(want) as [keyof HardwareValues, unknown][]) {
    const have = vm[k];
    const same = Array.isArray(v) ? JSON.stringify(v) === JSON.stringify(have) : v === have;
    if (!same) body[k] = v;
  }
  return Object.keys(body).length ? (body) : null;
}

/**
 * The summary line, e.g. "UEFI · Secure Boot · TPM 2.0 · Template". `brief` (the list) leaves out
 * a plain "BIOS" so that only VMs with something to say show a line.
 */
export function hardwareSummary(vm: Pick<Vm, 'firmware' | 'secureBoot' | 'tpm' | 'template'>, brief = false): string {
  const parts: string[] = [];
  if (vm.firmware === 'uefi') parts.push(t.hardware.summary.uefi);
  else if (!brief) parts.push(t.hardware.summary.bios);
  if (vm.secureBoot) parts.push(t.hardware.summary.secureBoot);
  if (vm.tpm) parts.push(t.hardware.summary.tpm);
  if (vm.template) parts.push(t.hardware.summary.template);
  return parts.join(' · ');
}
