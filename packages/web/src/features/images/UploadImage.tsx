import { useRef, useState, type DragEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Image } from '@qemu-manager/contract';
import { qk } from '../../api/queries';
import { uploadImage, type UploadHandle } from '../../api/upload';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { ProgressBar } from '../../components/ProgressBar';
import { formatBytes, percent } from '../../lib/format';
import { t } from '../../i18n';
import { imageNameError, suggestImageName } from './imageRules';

/** Upload a disk image into the library (streamed PUT /api/images/upload/{name}) with a progress bar. */
export function UploadImage({ existing }: { existing: Image[] | undefined }) {
  const qc = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [picked, setPicked] = useState<{ file: File; name: string } | null>(null);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<{ text: string; ok: boolean } | null>(null);
  const [dragging, setDragging] = useState(false);
  const handle = useRef<UploadHandle<Image> | null>(null);

  const pick = (file: File | undefined) => {
    setError(null);
    setDone(null);
    if (file) setPicked({ file, name: suggestImageName(file.name) });
  };
  const nameError = picked ? imageNameError(picked.name, existing) : null;
  const sizeError = picked && picked.file.size === 0 ? t.images.fileEmpty : null;

  const start = async () => {
    if (!picked || nameError || sizeError) return;
    setError(null);
    setProgress({ loaded: 0, total: picked.file.size });
    const h = uploadImage(picked.file, picked.name, (loaded, total) => setProgress({ loaded, total }));
    handle.current = h;
    try {
      const image = await h.promise;
      setDone({ text: t.images.uploadDone(image.name), ok: true });
      setPicked(null);
      if (input.current) input.current.value = '';
      qc.setQueryData<Image[]>(qk.images, (old) => (old ? [...old.filter((i) => i.name !== image.name), image] : old));
      void qc.invalidateQueries({ queryKey: qk.images });
    } catch (err) {
      if ((err as { code?: string }).code === 'ABORTED') setDone({ text: t.images.uploadCancelled, ok: false });
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
    <section className={`card upload ${dragging ? 'is-dragging' : ''}`} data-testid="image-upload"
      onDragOver={(e) => { e.preventDefault(); setDragging(true); }} onDragLeave={() => setDragging(false)} onDrop={onDrop}>
      <h2>{t.images.upload}</h2>
      <p className="muted small">{t.images.uploadHint}</p>
      <div className="upload-pick">
        <input ref={input} type="file" className="sr-only" id="image-file" data-testid="image-file-input" disabled={uploading}
          onChange={(e) => pick(e.target.files?.[0])} />
        <label htmlFor="image-file" className={`btn btn-secondary ${uploading ? 'is-disabled' : ''}`}>{t.images.choose}</label>
        <span className="muted">{picked ? `${picked.file.name} · ${formatBytes(picked.file.size)}` : t.images.drop}</span>
      </div>
      {picked && (
        <div className="form">
          <Field label={t.images.name} error={nameError ?? sizeError}>
            <input data-testid="image-upload-name" value={picked.name} disabled={uploading} spellCheck={false} autoComplete="off"
              onChange={(e) => setPicked({ ...picked, name: e.target.value })} />
          </Field>
          <div className="form-actions">
            {uploading ? (
              <Button onClick={() => handle.current?.abort()} data-testid="image-upload-cancel">{t.images.uploadCancel}</Button>
            ) : (
              <Button variant="primary" disabled={!!nameError || !!sizeError} onClick={() => void start()} data-testid="image-upload-start">{t.images.uploadStart}</Button>
            )}
          </div>
        </div>
      )}
      {progress && (
        <div className="upload-progress" data-testid="image-upload-progress">
          <ProgressBar value={pct} label={t.images.upload} />
          <span className="muted small">{t.isos.progress(formatBytes(progress.loaded), formatBytes(progress.total), pct)}</span>
        </div>
      )}
      <ErrorText error={error} testId="image-upload-error" onDismiss={() => setError(null)} />
      {done && <p className={done.ok ? 'ok-text' : 'muted'} role="status" data-testid={done.ok ? 'image-upload-done' : 'image-upload-cancelled'}>{done.text}</p>}
    </section>
  );
}
