import { useRef, useState, type DragEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Iso } from '@qemu-manager/contract';
import { qk } from '../../api/queries';
import { uploadIso, type UploadHandle } from '../../api/upload';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { ProgressBar } from '../../components/ProgressBar';
import { formatBytes, percent } from '../../lib/format';
import { isValidIsoName, suggestIsoName } from '../../lib/validation';
import { t } from '../../i18n';
import { looksLikeIso } from './isoFile';

interface Picked {
  file: File;
  name: string;
  isIso: boolean;
}

export function UploadIso({ existing }: { existing: Iso[] | undefined }) {
  const qc = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [picked, setPicked] = useState<Picked | null>(null);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<{ text: string; ok: boolean } | null>(null);
  const [dragging, setDragging] = useState(false);
  const handle = useRef<UploadHandle | null>(null);

  const pick = async (file: File | undefined) => {
    setError(null);
    setDone(null);
    if (!file) return;
    setPicked({ file, name: isValidIsoName(file.name) ? file.name : suggestIsoName(file.name), isIso: await looksLikeIso(file) });
  };

  const nameError = picked
    ? !isValidIsoName(picked.name)
      ? t.isos.nameInvalid
      : existing?.some((i) => i.name === picked.name)
        ? t.isos.nameTaken
        : null
    : null;
  const sizeError = picked && picked.file.size === 0 ? t.isos.empty0 : null;

  const start = async () => {
    if (!picked || nameError || sizeError) return;
    setError(null);
    setProgress({ loaded: 0, total: picked.file.size });
    const h = uploadIso(picked.file, picked.name, (loaded, total) => setProgress({ loaded, total }));
    handle.current = h;
    try {
      const iso = await h.promise;
      setDone({ text: t.isos.done(iso.name), ok: true });
      setPicked(null);
      if (input.current) input.current.value = '';
      await qc.invalidateQueries({ queryKey: qk.isos });
    } catch (err) {
      if ((err as { code?: string }).code === 'ABORTED') setDone({ text: t.isos.cancelled, ok: false });
      else setError(err);
    } finally {
      handle.current = null;
      setProgress(null);
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    void pick(e.dataTransfer.files[0]);
  };
  const uploading = progress !== null;
  const pct = progress ? percent(progress.loaded, progress.total) : 0;

  return (
    <section className={`card upload ${dragging ? 'is-dragging' : ''}`} data-testid="iso-upload"
      onDragOver={(e) => { e.preventDefault(); setDragging(true); }} onDragLeave={() => setDragging(false)} onDrop={onDrop}>
      <h2>{t.isos.upload}</h2>
      <div className="upload-pick">
        <input ref={input} type="file" accept=".iso,application/x-iso9660-image" className="sr-only" id="iso-file" data-testid="iso-file-input"
          disabled={uploading} onChange={(e) => void pick(e.target.files?.[0])} />
        <label htmlFor="iso-file" className={`btn btn-secondary ${uploading ? 'is-disabled' : ''}`}>{t.isos.choose}</label>
        <span className="muted">{picked ? `${picked.file.name} · ${formatBytes(picked.file.size)}` : t.isos.drop}</span>
      </div>
      {picked && (
        <div className="form">
          <Field label={t.isos.name} error={nameError ?? sizeError}>
            <input data-testid="iso-upload-name" value={picked.name} disabled={uploading} spellCheck={false}
              onChange={(e) => setPicked({ ...picked, name: e.target.value })} />
          </Field>
          {!picked.isIso && !sizeError && <p className="warn-text" data-testid="iso-not-iso">{t.isos.notIso}</p>}
          <div className="form-actions">
            {uploading ? (
              <Button onClick={() => handle.current?.abort()} data-testid="iso-upload-cancel">{t.isos.cancel}</Button>
            ) : (
              <Button variant="primary" disabled={!!nameError || !!sizeError} onClick={() => void start()} data-testid="iso-upload-start">{t.isos.start}</Button>
            )}
          </div>
        </div>
      )}
      {progress && (
        <div className="upload-progress" data-testid="iso-upload-progress">
          <ProgressBar value={pct} label={t.isos.upload} />
          <span className="muted small">{t.isos.progress(formatBytes(progress.loaded), formatBytes(progress.total), pct)}</span>
        </div>
      )}
      <ErrorText error={error} testId="iso-upload-error" onDismiss={() => setError(null)} />
      {done && <p className={done.ok ? 'ok-text' : 'muted'} role="status" data-testid={done.ok ? 'iso-upload-done' : 'iso-upload-cancelled'}>{done.text}</p>}
    </section>
  );
}
