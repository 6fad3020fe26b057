import type { OsType } from '@qemu-manager/contract';
import type { HardwareSetting } from './hardware.js';

/**
 * OS presets (issue 12): the initial hardware a new VM gets for its `osType`, for the fields the
 * create body does not give. Pure data, so the UI can show the same table.
 * - windows: what Windows 11 asks for (UEFI, Secure Boot, TPM 2.0) on devices its installer has
 *   drivers for (SATA disks, an e1000e NIC); the USB tablet is there for every VM; and, when the
 *   ISO library has one, the virtio-win drivers ISO as a second CD-ROM.
 * - linux: virtio disk and NIC.
 * - other: the defaults.
 */
export const OS_PRESETS: Readonly<Record<OsType, Readonly<Partial<Omit<HardwareSetting, 'osType' | 'driversIso'>>>>> = {
  windows: { firmware: 'uefi', secureBoot: true, tpm: true, machine: 'q35', diskBus: 'sata', nicModel: 'e1000e' },
  linux: { diskBus: 'virtio', nicModel: 'virtio' },
  other: {},
};

/** The presets that put the drivers ISO of the library in a second CD-ROM. */
export const PRESETS_WITH_DRIVERS_ISO: readonly OsType[] = ['windows'];

/** A name in the ISO library that is the virtio-win drivers ISO. */
export const VIRTIO_WIN_ISO = /virtio-win.*\.iso$/i;

/**
 * The virtio-win ISO among the library's file names: the highest version when there are several
 * (names compared with numbers as numbers), or null.
 */
export function pickDriversIso(names: readonly string[]): string | null {
  const found = names.filter((n) => VIRTIO_WIN_ISO.test(n));
  found.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return found.at(-1) ?? null;
}

/**
 * The setting a new VM starts from before the body's own fields are merged in (mergeHardware:
 * those always win, a `driversIso: null` included): `base` (the defaults, or a template's
 * setting) with the preset of `osType` over it, `osType` itself, and for windows the library's
 * virtio-win ISO (`libraryIso`, a path, or null) unless the body names a drivers ISO or null.
 */
export function presetBase(
  base: Readonly<HardwareSetting>,
  body: Readonly<Pick<Partial<HardwareSetting>, 'osType' | 'driversIso'>>,
  libraryIso: string | null,
): HardwareSetting {
  const osType = body.osType;
  if (!osType) return { ...base, bootOrder: [...base.bootOrder] };
  const preset = OS_PRESETS[osType];
  const drivers = PRESETS_WITH_DRIVERS_ISO.includes(osType) && libraryIso !== null && body.driversIso === undefined ? { driversIso: libraryIso } : {};
  return { ...base, ...preset, bootOrder: [...(preset.bootOrder ?? base.bootOrder)], osType, ...drivers };
}
