// Storage rules in the browser (resize, clone, chains, uploads): mirror the server's checks so a
// mistake is explained before a request. The server still decides; its refusals are shown as they come.
import type { Disk } from '@qemu-manager/contract';
import { inRange, isValidDiskName, MAX_DISK_SIZE_GB, parseIntStrict } from '../../lib/validation';
import { t } from '../../i18n';

/** Why this new size cannot be asked for (grow only, whole GB), or null when it can. */
export function resizeSizeError(currentGb: number, text: string): string | null {
  const n = parseIntStrict(text);
  if (!inRange(n, 1, MAX_DISK_SIZE_GB)) return t.storage.sizeInvalid(MAX_DISK_SIZE_GB);
  if (n <= currentGb) return t.storage.sizeNotLarger(currentGb);
  return null;
}

/** Why this name cannot be a new disk's, or null. */
export function newDiskNameError(name: string, disks: readonly Pick<Disk, 'name'>[] | undefined): string | null {
  if (!isValidDiskName(name)) return t.disks.nameInvalid;
  if (disks?.some((d) => d.name === name)) return t.storage.cloneNameTaken;
  return null;
}

/** A free name for a copy of `base`: "data-clone", "data-clone2", … (within the 63-character limit). */
export function suggestCloneName(base: string, taken: readonly string[], suffix = '-clone'): string {
  const stem = base.slice(0, 63 - suffix.length - 3);
  for (let i = 1; i < 1000; i++) {
    const name = `${stem}${suffix}${i === 1 ? '' : i}`;
    if (!taken.includes(name)) return name;
  }
  return `${stem}${suffix}`;
}

export interface Chain {
  /** The disk this one is an overlay of: its name, or null when it backs onto nothing. */
  backsOnto: { id: string | null; name: string } | null;
  /** The disks that back onto this one (their names, in the server's order). */
  baseOf: { id: string; name: string }[];
}

/** A disk's backing chain in names, from `backingFile` (a path) and `children` (ids). */
export function diskChain(disk: Pick<Disk, 'backingFile' | 'children'>, disks: readonly Pick<Disk, 'id' | 'name' | 'path'>[] | undefined): Chain {
  let backsOnto: Chain['backsOnto'] = null;
  if (disk.backingFile) {
    const base = disks?.find((d) => d.path === disk.backingFile);
    backsOnto = base ? { id: base.id, name: base.name } : { id: null, name: t.storage.unknownDisk };
  }
  const baseOf = (disk.children ?? []).map((id) => ({ id, name: disks?.find((d) => d.id === id)?.name ?? id.slice(0, 8) }));
  return { backsOnto, baseOf };
}

/** "backs onto base · base of a, b", or null for a disk outside any chain. */
export function chainLabel(chain: Chain): string | null {
  const parts: string[] = [];
  if (chain.backsOnto) parts.push(t.storage.chainBacks(chain.backsOnto.name));
  if (chain.baseOf.length > 0) parts.push(t.storage.chainBase(chain.baseOf.map((c) => c.name).join(', ')));
  return parts.length ? parts.join(' · ') : null;
}

/** Turn an image's file name into a valid disk name: "Debian 12 (cloud).qcow2" -> "Debian_12_cloud". */
export function suggestDiskName(fileName: string): string {
  let stem = fileName.replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|bin)$/i, '');
  stem = stem.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+/g, '_').replace(/^[^A-Za-z0-9]+/, '').replace(/[_.-]+$/, '');
  if (!stem) stem = 'disk';
  return stem.slice(0, 63).replace(/[_.-]+$/, '') || 'disk';
}

/** Why this picked file cannot be uploaded as a disk (empty, or an .ova: that goes through import), or null. */
export function uploadFileError(file: Pick<File, 'name' | 'size'>): string | null {
  if (file.size === 0) return t.storage.uploadEmpty;
  if (/\.ova$/i.test(file.name)) return t.storage.uploadOva;
  return null;
}
