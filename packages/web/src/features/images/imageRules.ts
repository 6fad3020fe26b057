// The Images page's checks (issue 12): names as the contract allows them, the download body with
// its checksum choice, and the words for a refused delete.
import { IMAGE_NAME_PATTERN, type CreateImageBody, type Image } from '@qemu-manager/contract';
import { ApiError, errorMessage } from '../../api/client';
import { t } from '../../i18n';
import { importUrlError, sha256Error, suggestImportName } from '../disks/importRules';

const nameRe = new RegExp(IMAGE_NAME_PATTERN);

export function imageNameError(name: string, images: readonly Pick<Image, 'name'>[] | undefined): string | null {
  if (!nameRe.test(name)) return t.images.nameInvalid;
  if (images?.some((i) => i.name === name)) return t.images.nameTaken;
  return null;
}

/** A name from a file name or URL: "debian-12-genericcloud-amd64.qcow2" -> "debian-12-genericcloud-amd64". */
export function suggestImageName(fileOrUrl: string): string {
  if (/^https?:/i.test(fileOrUrl)) return suggestImportName(fileOrUrl);
  const stem = fileOrUrl.replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|bin)$/i, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+/g, '_').replace(/^[^A-Za-z0-9]+/, '').replace(/[_.-]+$/, '');
  return stem.slice(0, 63).replace(/[_.-]+$/, '');
}

export type ChecksumMode = 'none' | 'sha256' | 'checksumUrl';

export interface DownloadForm {
  name: string;
  url: string;
  mode: ChecksumMode;
  sha256: string;
  checksumUrl: string;
}

export interface DownloadErrors {
  name: string | null;
  url: string | null;
  sha256: string | null;
  checksumUrl: string | null;
}

export function downloadErrors(f: DownloadForm, images: readonly Pick<Image, 'name'>[] | undefined): DownloadErrors {
  return {
    name: imageNameError(f.name, images),
    url: importUrlError(f.url),
    sha256: f.mode === 'sha256' ? (f.sha256.trim() ? sha256Error(f.sha256) : t.importDisk.sha256Invalid(0)) : null,
    checksumUrl: f.mode === 'checksumUrl' && importUrlError(f.checksumUrl) ? t.images.checksumUrlInvalid : null,
  };
}

/** POST /api/images: only the checksum the user chose. */
export function downloadBody(f: DownloadForm): CreateImageBody {
  const body: CreateImageBody = { name: f.name, url: f.url.trim() };
  if (f.mode === 'sha256') body.sha256 = f.sha256.trim().toLowerCase();
  if (f.mode === 'checksumUrl') body.checksumUrl = f.checksumUrl.trim();
  return body;
}

/** A refused delete in words: an image in use (409 IMAGE_IN_USE) says what to do. */
export function deleteRefusal(err: unknown): string {
  if (err instanceof ApiError && (err.code === 'IMAGE_IN_USE' || (err.status === 409 && !err.code))) return t.images.inUse;
  return errorMessage(err);
}

/** "1a2b3c4d…" (the first 12 hex digits). */
export const shortSha = (sha: string): string => (sha.length > 12 ? `${sha.slice(0, 12)}…` : sha);
