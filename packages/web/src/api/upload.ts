// ISO upload with progress. fetch() has no upload progress, so this uses XMLHttpRequest.
import type { Iso, IsoEnvelope } from '@qemu-manager/contract';
import { t } from '../i18n';
import { API_BASE, ApiError, toApiError } from './client';

export interface UploadHandle {
  promise: Promise<Iso>;
  abort: () => void;
}

export function uploadIso(file: Blob, name: string, onProgress: (loaded: number, total: number) => void): UploadHandle {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<Iso>((resolve, reject) => {
    xhr.open('PUT', `${API_BASE}/isos/${encodeURIComponent(name)}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve((JSON.parse(xhr.responseText) as IsoEnvelope).iso);
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
