// Client-side checks that mirror the server's schemas, so mistakes are caught before a request.
import { DISK_NAME_PATTERN, MAX_DISK_SIZE_GB, MIN_MEMORY_MIB, TOKEN_NAME_PATTERN, VM_NAME_PATTERN } from '@qemu-manager/contract';

const vmNameRe = new RegExp(VM_NAME_PATTERN);
const diskNameRe = new RegExp(DISK_NAME_PATTERN);
const tokenNameRe = new RegExp(TOKEN_NAME_PATTERN);
/** Same rule as the server's PUT /api/isos/:name. */
export const ISO_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\\.iso$';
const isoNameRe = new RegExp(ISO_NAME_PATTERN);

export const isValidVmName = (s: string): boolean => vmNameRe.test(s);
export const isValidDiskName = (s: string): boolean => diskNameRe.test(s);
export const isValidIsoName = (s: string): boolean => isoNameRe.test(s);
export const isValidTokenName = (s: string): boolean => tokenNameRe.test(s);

/** Parse a whole positive integer from an input's text; null when it is not one. */
export function parseIntStrict(text: string): number | null {
  const s = text.trim();
  if (!/^\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

export const inRange = (n: number | null, min: number, max: number): n is number => n !== null && n >= min && n <= max;

export interface HostLimits {
  cpus: number;
  memoryMiB: number;
}
/** Used until /api/health has answered; the server still enforces the real limits. */
export const FALLBACK_LIMITS: HostLimits = { cpus: 64, memoryMiB: 1024 * 1024 };
export { MIN_MEMORY_MIB, MAX_DISK_SIZE_GB };

/** A disk name derived from a VM name: "web" -> "web-disk", trimmed to the 63-character limit. */
export function defaultDiskName(vmName: string): string {
  const base = vmName.trim();
  if (!base) return '';
  return `${base.slice(0, 63 - '-disk'.length)}-disk`;
}

/** Turn any file name into a valid ISO name: "My Distro (x64).ISO" -> "My_Distro_x64.iso". */
export function suggestIsoName(fileName: string): string {
  let stem = fileName.replace(/\.iso$/i, '');
  stem = stem.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+/g, '_').replace(/^[^A-Za-z0-9]+/, '').replace(/[_.-]+$/, '');
  if (!stem) stem = 'image';
  return `${stem.slice(0, 197)}.iso`;
}
