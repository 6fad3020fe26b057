// Import from a URL and convert, in the browser: the same checks the server makes on the URL and
// the sha256 (so a typo is explained before a request), which field a refusal belongs to, and the
// disks a finished task made. The server still decides.
import type { Disk, DiskFormat, Task } from '@qemu-manager/contract';
import { ApiError } from '../../api/client';
import { t } from '../../i18n';
import { paths } from '../../router';

const MAX_URL = 4096;
const SHA256 = /^[0-9a-fA-F]{64}$/;

/** Why this text is not an http(s) URL to download from, or null when it is one. */
export function importUrlError(text: string): string | null {
  const s = text.trim();
  if (!s) return t.importDisk.urlRequired;
  if (s.length > MAX_URL) return t.importDisk.urlTooLong(MAX_URL);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return t.importDisk.urlInvalid;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return t.importDisk.urlScheme(url.protocol.replace(/:$/, ''));
  if (!url.hostname) return t.importDisk.urlInvalid;
  return null;
}

/** Why this is not a sha256 in hex (64 digits), or null; empty is fine (no check). */
export function sha256Error(text: string): string | null {
  const s = text.trim();
  if (!s) return null;
  if (!SHA256.test(s)) return t.importDisk.sha256Invalid(s.length);
  return null;
}

/** The body POST /api/disks/import gets: trimmed, optional fields left out when empty. */
export function importBody(form: { name: string; url: string; sha256: string; format: DiskFormat }): { name: string; url: string; sha256?: string; format: DiskFormat } {
  const sha256 = form.sha256.trim().toLowerCase();
  return { name: form.name, url: form.url.trim(), ...(sha256 ? { sha256 } : {}), format: form.format };
}

/** A disk name from a URL's last path segment: ".../Debian 12.qcow2?x=1" -> "Debian_12"; '' when none. */
export function suggestImportName(url: string): string {
  let last: string;
  try {
    last = decodeURIComponent(new URL(url.trim()).pathname.split('/').pop() ?? '');
  } catch {
    return '';
  }
  const stem = last.replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|ova|bin)$/i, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+/g, '_').replace(/^[^A-Za-z0-9]+/, '').replace(/[_.-]+$/, '');
  return stem.slice(0, 56).replace(/[_.-]+$/, '');
}

/** The ids of the disks a finished import or conversion made: `{ disk }` or `{ disks: [...] }` (ids or objects). */
export function resultDiskIds(task: Pick<Task, 'status' | 'result'> | undefined): string[] {
  if (!task || task.status !== 'succeeded' || !task.result) return [];
  const idOf = (v: unknown): string | null => {
    if (typeof v === 'string' && v) return v;
    if (v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string') return (v as { id: string }).id;
    return null;
  };
  const r = task.result as { disk?: unknown; disks?: unknown };
  const ids: string[] = [];
  if (Array.isArray(r.disks)) for (const v of r.disks) { const id = idOf(v); if (id) ids.push(id); }
  const one = idOf(r.disk);
  if (one && !ids.includes(one)) ids.unshift(one);
  return ids;
}

export interface DiskLink {
  id: string;
  /** The disk's name once the list has it, else the start of its id. */
  name: string;
  format: string | null;
  /** The disks page, at that disk's row. */
  href: string;
}

/** What a finished task made, as links to the disks (named from the list the UI has). */
export function resultDiskLinks(task: Pick<Task, 'status' | 'result'> | undefined, disks: readonly Pick<Disk, 'id' | 'name' | 'format'>[] | undefined): DiskLink[] {
  return resultDiskIds(task).map((id) => {
    const d = disks?.find((x) => x.id === id);
    return { id, name: d ? d.name : id.slice(0, 8), format: d ? d.format : null, href: diskHref(id) };
  });
}

/** Where a disk is shown: the disks page, scrolled to its row (`id="disk-<id>"`). */
export const diskHref = (id: string): string => `${paths.disks}#${diskAnchor(id)}`;
export const diskAnchor = (id: string): string => `disk-${id}`;

export type ImportField = 'name' | 'url' | 'sha256' | 'format' | null;

/**
 * Which field a refusal of the request is about, to show the server's words next to it: a name in
 * use next to the name, a bad URL next to the URL. Null: next to the submit button.
 */
export function refusalField(err: unknown): ImportField {
  if (!(err instanceof ApiError) || err.status < 400 || err.status >= 500) return null;
  if (err.code === 'NAME_TAKEN') return 'name';
  if (err.code === 'VALIDATION') {
    const m = err.message.toLowerCase();
    if (/\burl\b/.test(m)) return 'url';
    if (m.includes('sha256')) return 'sha256';
    if (/\bname\b/.test(m)) return 'name';
    if (m.includes('format')) return 'format';
  }
  return null;
}
