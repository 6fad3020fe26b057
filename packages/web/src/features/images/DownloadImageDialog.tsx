import { useState } from 'react';
import type { Image } from '@qemu-manager/contract';
import { imagesApi } from '../../api/endpoints';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskDialog } from '../tasks/TaskDialog';
import { useTaskRun } from '../tasks/useTaskRun';
import { downloadBody, downloadErrors, suggestImageName, type ChecksumMode, type DownloadForm } from './imageRules';

const MODES: readonly ChecksumMode[] = ['checksumUrl', 'sha256', 'none'];

/** Download an image from a URL (a task with progress); stays open at the end with the result. */
export function DownloadImageDialog({ existing, onClose }: { existing: Image[] | undefined; onClose: () => void }) {
  const [form, setForm] = useState<DownloadForm>({ name: '', url: '', mode: 'checksumUrl', sha256: '', checksumUrl: '' });
  const [nameEdited, setNameEdited] = useState(false);
  const [tried, setTried] = useState(false);
  const run = useTaskRun((body: ReturnType<typeof downloadBody>) => imagesApi.download(body));
  const errs = downloadErrors(form, run.succeeded ? existing?.filter((i) => i.name !== form.name) : existing);
  const show = (v: string | null, typed: string) => (typed || tried ? v : null);
  const invalid = Object.values(errs).some(Boolean);
  const locked = run.busy || run.succeeded;
  const set = (patch: Partial<DownloadForm>) => {
    setForm((f) => ({ ...f, ...patch }));
    run.reset();
  };
  return (
    <TaskDialog
      id="download-image"
      title={t.images.downloadTitle}
      run={run}
      invalid={tried && invalid}
      onSubmit={() => {
        setTried(true);
        if (!invalid) run.start(downloadBody(form));
      }}
      onClose={onClose}
      submitLabel={t.images.downloadSubmit}
      busyLabel={t.images.downloading}
      finished={run.succeeded}
      after={run.succeeded && <p className="ok-text" role="status" data-testid="download-image-done">{t.images.downloadDone(form.name)}</p>}
    >
      <p className="muted small">{t.images.downloadIntro}</p>
      <Field label={t.images.url} error={show(errs.url, form.url)} hint={t.importDisk.urlHint}>
        <input data-testid="download-image-url" type="url" value={form.url} autoFocus autoComplete="off" spellCheck={false} disabled={locked} placeholder="https://"
          onChange={(e) => set({ url: e.target.value, ...(nameEdited ? {} : { name: suggestImageName(e.target.value) }) })} />
      </Field>
      <Field label={t.images.name} error={show(errs.name, form.name)}>
        <input data-testid="download-image-name" value={form.name} autoComplete="off" spellCheck={false} disabled={locked}
          onChange={(e) => { setNameEdited(true); set({ name: e.target.value }); }} />
      </Field>
      <fieldset className="fieldset choices" disabled={locked} data-testid="download-image-checksum">
        <legend>{t.images.checksum}</legend>
        {MODES.map((m) => (
          <label key={m} className="choice">
            <input type="radio" name="download-image-checksum" checked={form.mode === m} onChange={() => set({ mode: m })} data-testid={`download-image-checksum-${m}`} />
            <span className="choice-text">
              <span className="choice-title">{m === 'none' ? t.images.checksumNone : m === 'sha256' ? t.images.checksumSha256 : t.images.checksumUrl}</span>
              {m === 'checksumUrl' && <span className="field-hint">{t.images.checksumUrlHint}</span>}
            </span>
          </label>
        ))}
      </fieldset>
      {form.mode === 'sha256' && (
        <Field label={t.images.checksumSha256} error={show(errs.sha256, form.sha256)} hint={t.importDisk.sha256Hint}>
          <input data-testid="download-image-sha256" className="mono" value={form.sha256} autoComplete="off" spellCheck={false} disabled={locked}
            onChange={(e) => set({ sha256: e.target.value })} />
        </Field>
      )}
      {form.mode === 'checksumUrl' && (
        <Field label={t.images.checksumUrl} error={show(errs.checksumUrl, form.checksumUrl)}>
          <input data-testid="download-image-checksum-url" type="url" value={form.checksumUrl} autoComplete="off" spellCheck={false} disabled={locked} placeholder="https://"
            onChange={(e) => set({ checksumUrl: e.target.value })} />
        </Field>
      )}
    </TaskDialog>
  );
}
