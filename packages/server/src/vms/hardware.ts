import type { BootDevice, HardwareBody, NicModel, OsType, Vm, VmDiskBus, VmFirmware, VmMachine } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';
import { emitVm, requireAllowed, requireVm, type VmContext } from './context.js';
import { refuseImageLibrary } from './image-rules.js';
import type { VmRecord } from './repo.js';

/** A VM's hardware options (issue 12) as stored. */
export interface HardwareSetting {
  firmware: VmFirmware;
  secureBoot: boolean;
  tpm: boolean;
  machine: VmMachine;
  diskBus: VmDiskBus;
  nicModel: NicModel;
  bootOrder: BootDevice[];
  osType: OsType;
  /** The real path of a second, read-only CD-ROM (checked like an ISO medium), or null. */
  driversIso: string | null;
}

export const DEFAULT_HARDWARE: Readonly<HardwareSetting> = {
  firmware: 'bios',
  secureBoot: false,
  tpm: false,
  machine: 'q35',
  diskBus: 'virtio',
  nicModel: 'virtio',
  bootOrder: ['disk', 'cdrom'],
  osType: 'other',
  driversIso: null,
};

/** The stored setting of a VM. */
export function hardwareOf(vm: Pick<Vm, keyof HardwareSetting>): HardwareSetting {
  return {
    firmware: vm.firmware,
    secureBoot: vm.secureBoot,
    tpm: vm.tpm,
    machine: vm.machine,
    diskBus: vm.diskBus,
    nicModel: vm.nicModel,
    bootOrder: [...vm.bootOrder],
    osType: vm.osType,
    driversIso: vm.driversIso,
  };
}

/**
 * The setting `change` makes of `current` (omitted fields keep their value), refused (400
 * VALIDATION) when it asks for Secure Boot without UEFI or on the pc machine: nothing is switched
 * off on the caller's behalf, so a request never changes more than it names. `driversIso` is taken
 * as given: the caller resolves it under the storage rules (resolveCdMedium).
 */
export function mergeHardware(current: HardwareSetting, change: Partial<HardwareSetting>): HardwareSetting {
  const next: HardwareSetting = {
    firmware: change.firmware ?? current.firmware,
    secureBoot: change.secureBoot ?? current.secureBoot,
    tpm: change.tpm ?? current.tpm,
    machine: change.machine ?? current.machine,
    diskBus: change.diskBus ?? current.diskBus,
    nicModel: change.nicModel ?? current.nicModel,
    bootOrder: [...(change.bootOrder ?? current.bootOrder)],
    osType: change.osType ?? current.osType,
    driversIso: change.driversIso !== undefined ? change.driversIso : current.driversIso,
  };
  if (next.secureBoot && next.firmware !== 'uefi') {
    throw new AppError(
      'VALIDATION',
      change.secureBoot
        ? 'Secure Boot needs UEFI firmware: pass "firmware": "uefi" too'
        : 'This VM has Secure Boot on, which needs UEFI: pass "secureBoot": false too to switch to BIOS',
    );
  }
  if (next.secureBoot && next.machine === 'pc') {
    throw new AppError(
      'VALIDATION',
      change.secureBoot
        ? 'Secure Boot needs the q35 machine (its firmware runs in SMM, which the pc machine does not give it): pass "machine": "q35"'
        : 'This VM has Secure Boot on, which needs the q35 machine (SMM): pass "secureBoot": false too to switch to pc',
    );
  }
  if (new Set(next.bootOrder).size !== next.bootOrder.length) {
    throw new AppError('VALIDATION', 'bootOrder names a device twice');
  }
  return next;
}

/** The repo columns of a setting (the fields it has; firmware, Secure Boot and TPM always). */
export function hardwareColumns(h: Pick<HardwareSetting, 'firmware' | 'secureBoot' | 'tpm'> & Partial<HardwareSetting>): {
  firmware: VmFirmware;
  secure_boot: number;
  tpm: number;
  machine?: VmMachine;
  disk_bus?: VmDiskBus;
  nic_model?: NicModel;
  boot_order?: string;
  os_type?: OsType;
  drivers_iso?: string | null;
} {
  return {
    firmware: h.firmware,
    secure_boot: h.secureBoot ? 1 : 0,
    tpm: h.tpm ? 1 : 0,
    ...(h.machine !== undefined ? { machine: h.machine } : {}),
    ...(h.diskBus !== undefined ? { disk_bus: h.diskBus } : {}),
    ...(h.nicModel !== undefined ? { nic_model: h.nicModel } : {}),
    ...(h.bootOrder !== undefined ? { boot_order: JSON.stringify(h.bootOrder) } : {}),
    ...(h.osType !== undefined ? { os_type: h.osType } : {}),
    ...(h.driversIso !== undefined ? { drivers_iso: h.driversIso } : {}),
  };
}

/**
 * A file given as CD media (the ISO drive's medium, the drivers CD-ROM): its real path when it is
 * an allowed regular file under a storage root, and nobody's disk (neither a managed disk nor an
 * image attached to a VM). The same rules as mounting an ISO.
 */
export function resolveCdMedium(ctx: VmContext, isoPath: string): string {
  const real = ctx.storage.resolveFile(isoPath, 'ISO');
  refuseImageLibrary(ctx, real, 'CD medium'); // images (issue 12): library files only back disks
  const managed = ctx.disks.byPath(real);
  if (managed) throw new AppError('IMAGE_NOT_ALLOWED', `${real} is the managed disk ${managed.name}; attach it as a disk instead`);
  const owner = ctx.repo.diskOwner(real);
  if (owner) throw new AppError('DISK_IN_USE', `${real} is attached as a disk to VM ${owner}; it cannot be CD media`);
  return real;
}

/**
 * The hardware fields a request names (omitted ones left out), its drivers ISO resolved under the
 * storage and ISO rules (resolveCdMedium); `null` stays null (no drivers CD-ROM).
 */
export function hardwareChange(ctx: VmContext, body: Partial<HardwareBody>): Partial<HardwareSetting> {
  const { firmware, secureBoot, tpm, machine, diskBus, nicModel, bootOrder, osType, driversIso } = body;
  const all: Partial<HardwareSetting> = { firmware, secureBoot, tpm, machine, diskBus, nicModel, bootOrder, osType, driversIso };
  const change = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Partial<HardwareSetting>;
  if (typeof change.driversIso === 'string') change.driversIso = resolveCdMedium(ctx, change.driversIso);
  return change;
}

/** IDE/SATA units of each machine: q35's ICH9 AHCI has 6 ports, pc's PIIX IDE 2 channels × 2 units. */
export const IDE_UNITS: Readonly<Record<VmMachine, number>> = { q35: 6, pc: 4 };

/**
 * The CD-ROM drives a VM gets at start, all on the IDE/SATA controller: the ISO drive (always, so
 * media change live), the drivers CD-ROM when set, and `extra` more (e.g. a cloud-init seed).
 */
export function cdromCount(h: Pick<HardwareSetting, 'driversIso'>, extra = 0): number {
  return 1 + (h.driversIso !== null ? 1 : 0) + extra;
}

/**
 * Why `disks` disks and `cdroms` CD-ROMs do not fit the machine's controllers with this disk bus
 * (null: they fit). SATA disks share the IDE/SATA units with the CD-ROMs; virtio and SCSI disks
 * take none.
 */
export function layoutProblem(h: Pick<HardwareSetting, 'machine' | 'diskBus'>, disks: number, cdroms: number): string | null {
  const units = IDE_UNITS[h.machine];
  const used = cdroms + (h.diskBus === 'sata' ? disks : 0);
  if (used <= units) return null;
  const where = h.machine === 'q35' ? 'the q35 machine has 6 SATA ports' : 'the pc machine has 4 IDE units (2 channels × 2)';
  return `${disks} SATA disk${disks === 1 ? '' : 's'} and ${cdroms} CD-ROM${cdroms === 1 ? '' : 's'} do not fit: ${where}, shared by disks and CD-ROMs; use the virtio or scsi disk bus, detach a disk, or remove the drivers ISO`;
}

/**
 * Hardware options (issue 12): firmware (BIOS or UEFI), Secure Boot, a TPM 2.0, the machine, the
 * disk bus, the NIC model, the boot order, the OS preset and the drivers CD-ROM, changed while the
 * VM is stopped (409 VM_NOT_STOPPED otherwise). The runtime keeps what they need (the UEFI
 * variable store, the TPM state) with the VM and applies the setting at the next start.
 */
export class HardwareService {
  constructor(private readonly ctx: VmContext) {}

  set(id: string, body: HardwareBody): Vm {
    const { ctx } = this;
    const release = ctx.locks.acquire(id, 'configure');
    try {
      const vm = requireVm(ctx, id);
      requireAllowed(vm, 'configure', (status) => `Cannot change the hardware while the VM is ${status}; stop it first`);
      const next = mergeHardware(hardwareOf(vm), hardwareChange(ctx, body));
      refuseLayout(vm, next);
      ctx.repo.update(id, hardwareColumns(next));
      return emitVm(ctx, id);
    } finally {
      release();
    }
  }
}

/** 400 when the VM's disks and CD-ROMs would not fit the setting's controllers. */
export function refuseLayout(vm: Pick<VmRecord, 'disks'>, h: HardwareSetting): void {
  const problem = layoutProblem(h, vm.disks.length, cdromCount(h));
  if (problem) throw new AppError('VALIDATION', `This hardware cannot be built: ${problem}`);
}
