// Uploads with progress (ISOs, disk images). fetch() has no upload progress, so this uses XMLHttpRequest.
import type { Disk, DiskEnvelope, Image, ImageEnvelope, Iso, IsoEnvelope } from '@qemu-manager/contract';
import { t } from '../i18n';
import { API_BASE, ApiError, toApiError } from './client';

export interface UploadHandle<T = Iso> {
  promise: Promise<T>;
  abort: () => void;
}

/** PUT a file as the raw body to `path` (under /api) and pick the result from the JSON answer. */
function uploadFile<T>(path: string, file: Blob, pick: (body: unknown) => T, onProgress: (loaded: number, total: number) => void): UploadHandle<T> {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<T>((resolve, reject) => {
    xhr.open('PUT', `${API_BASE}${path}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(pick(JSON.parse(xhr.responseText)));
        } catch {
          reject(new ApiError(xhr.status, 'BAD_RESPONSE', t.errors.unexpected));
        }
      } else {
        reject(toApiError(xhr.status, xhr.responseText));
      }
    };
    // A server that rejects early (413, 409) may close the connection mid-body: the browser then
    // reports a network error with status 0. Say what probably happened instead of "network".
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', t.errors.network));
    xhr.onabort = () => reject(new ApiError(0, 'ABORTED', t.isos.cancelled));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

function field<T>(key: string): (body: unknown) => T {
  return (body) => {
    const v = (body as Record<string, unknown> | null)?.[key];
    if (!v || typeof v !== 'object') throw new Error('bad response');
    return v as T;
  };
}

export function uploadIso(file: Blob, name: string, onProgress: (loaded: number, total: number) => void): UploadHandle<Iso> {
  return uploadFile(`/isos/${encodeURIComponent(name)}`, file, field<IsoEnvelope['iso']>('iso'), onProgress);
}

/** PUT /api/disks/upload/{name}: a raw, qcow2 or vmdk image becomes a ready managed disk (201 { disk }). */
export function uploadDiskImage(file: Blob, name: string, onProgress: (loaded: number, total: number) => void): UploadHandle<Disk> {
  return uploadFile(`/disks/upload/${encodeURIComponent(name)}`, file, field<DiskEnvelope['disk']>('disk'), onProgress);
}

/** PUT /api/images/upload/{name} (issue 12): a disk image becomes a library image, stored as qcow2 (201 { image }). */
export function uploadImage(file: Blob, name: string, onProgress: (loaded: number, total: number) => void): UploadHandle<Image> {
  return uploadFile(`/images/upload/${encodeURIComponent(name)}`, file, field<ImageEnvelope['image']>('image'), onProgress);
}
