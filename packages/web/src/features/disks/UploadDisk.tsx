import { useRef, useState, type DragEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Disk } from '@qemu-manager/contract';
import { addCreatedDisk } from '../../api/queries';
import { uploadDiskImage, type UploadHandle } from '../../api/upload';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { ProgressBar } from '../../components/ProgressBar';
import { formatBytes, percent } from '../../lib/format';
import { t } from '../../i18n';
import { newDiskNameError, suggestDiskName, uploadFileError } from './storageRules';

/** Upload a disk image (raw, qcow2, vmdk, vdi, vhdx; an .ova goes through import) with a progress bar; the server reads its format itself. */
export function UploadDisk({ existing }: { existing: Disk[] | undefined }) {
  const qc = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [picked, setPicked] = useState<{ file: File; name: string } | null>(null);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<{ text: string; ok: boolean; sent?: number } | null>(null);
  // The last upload progress the browser reported (shown on the result, for checking).
  const sent = useRef(0);
  const [dragging, setDragging] = useState(false);
  const handle = useRef<UploadHandle<Disk> | null>(null);

  const pick = (file: File | undefined) => {
    setError(null);
    setDone(null);
    if (file) setPicked({ file, name: suggestDiskName(file.name) });
  };
  const nameError = picked ? newDiskNameError(picked.name, existing) : null;
  const sizeError = picked ? uploadFileError(picked.file) : null;

  const start = async () => {
    if (!picked || nameError || sizeError) return;
    setError(null);
    setProgress({ loaded: 0, total: picked.file.size });
    sent.current = 0;
    const h = uploadDiskImage(picked.file, picked.name, (loaded, total) => {
      sent.current = loaded;
      setProgress({ loaded, total });
    });
    handle.current = h;
    try {
      const disk = await h.promise;
      addCreatedDisk(qc, disk);
      setDone({ text: t.storage.uploadDone(disk.name, disk.format), ok: true, sent: sent.current });
      setPicked(null);
      if (input.current) input.current.value = '';
    } catch (err) {
      if ((err as { code?: string }).code === 'ABORTED') setDone({ text: t.storage.uploadCancelled, ok: false });
      else setError(err);
    } finally {
      handle.current = null;
      setProgress(null);
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    pick(e.dataTransfer.files[0]);
  };
  const uploading = progress !== null;
  const pct = progress ? percent(progress.loaded, progress.total) : 0;

  return (
    <section className={`card upload disk-upload ${dragging ? 'is-dragging' : ''}`} data-testid="disk-upload"
      onDragOver={(e) => { e.preventDefault(); setDragging(true); }} onDragLeave={() => setDragging(false)} onDrop={onDrop}>
      <h2>{t.storage.upload}</h2>
      <p className="muted small">{t.storage.uploadHint}</p>
      <div className="upload-pick">
        <input ref={input} type="file" accept=".qcow2,.img,.raw,.vmdk,.vdi,.vhdx,application/octet-stream" className="sr-only" id="disk-file" data-testid="disk-file-input"
          disabled={uploading} onChange={(e) => pick(e.target.files?.[0])} />
        <label htmlFor="disk-file" className={`btn btn-secondary ${uploading ? 'is-disabled' : ''}`}>{t.storage.choose}</label>
        <span className="muted">{picked ? `${picked.file.name} · ${formatBytes(picked.file.size)}` : t.storage.drop}</span>
      </div>
      {picked && (
        <div className="form">
          <Field label={t.storage.uploadName} error={nameError ?? sizeError}>
            <input data-testid="disk-upload-name" value={picked.name} disabled={uploading} spellCheck={false}
              onChange={(e) => { setPicked({ ...picked, name: e.target.value }); setError(null); }} />
          </Field>
          <div className="form-actions">
            {uploading ? (
              <Button onClick={() => handle.current?.abort()} data-testid="disk-upload-cancel">{t.storage.uploadCancel}</Button>
            ) : (
              <Button variant="primary" disabled={!!nameError || !!sizeError} onClick={() => void start()} data-testid="disk-upload-start">{t.storage.uploadStart}</Button>
            )}
          </div>
        </div>
      )}
      {progress && (
        <div className="upload-progress" data-testid="disk-upload-progress">
          <ProgressBar value={pct} label={t.storage.upload} testId="disk-upload-bar" />
          <span className="muted small">{t.isos.progress(formatBytes(progress.loaded), formatBytes(progress.total), pct)}</span>
        </div>
      )}
      <ErrorText error={error} testId="disk-upload-error" onDismiss={() => setError(null)} />
      {done && <p className={done.ok ? 'ok-text' : 'muted'} role="status" data-testid={done.ok ? 'disk-upload-done' : 'disk-upload-cancelled'} data-sent={done.sent}>{done.text}</p>}
    </section>
  );
}
