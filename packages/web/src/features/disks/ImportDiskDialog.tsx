import { useState } from 'react';
import type { DiskFormat } from '@qemu-manager/contract';
import { errorMessage } from '../../api/client';
import { disksApi } from '../../api/endpoints';
import { useDisks } from '../../api/queries';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskDialog } from '../tasks/TaskDialog';
import { useTaskRun } from '../tasks/useTaskRun';
import { DiskFormatSelect } from './DiskFormatSelect';
import { DiskLinks } from './DiskLinks';
import { importBody, importUrlError, refusalField, resultDiskIds, resultDiskLinks, sha256Error, suggestImportName } from './importRules';
import { newDiskNameError } from './storageRules';

/**
 * Download a disk image (or an .ova) from a URL into a new disk. Mounted only while open; stays
 * open when the task has ended, with links to the disks it made or the failure in words.
 */
export function ImportDiskDialog({ onClose }: { onClose: () => void }) {
  const disks = useDisks();
  const [url, setUrl] = useState('');
  const [name, setName] = useState('');
  const [nameEdited, setNameEdited] = useState(false);
  const [sha256, setSha256] = useState('');
  const [format, setFormat] = useState<DiskFormat>('qcow2');
  const [tried, setTried] = useState(false);
  const run = useTaskRun((body: ReturnType<typeof importBody>) => disksApi.importFromUrl(body));
  const made = resultDiskIds(run.task);
  const urlErr = importUrlError(url);
  const nameErr = newDiskNameError(name, disks.data?.filter((d) => !made.includes(d.id)));
  const shaErr = sha256Error(sha256);
  // Errors show once there is something to judge (or after a try), not on an empty new form.
  const shownUrlErr = url || tried ? urlErr : null;
  const shownNameErr = name || tried ? nameErr : null;
  const refusedAt = refusalField(run.error);
  const refusal = (field: string) => (refusedAt === field ? errorMessage(run.error) : null);
  const finished = run.succeeded;
  const locked = run.busy || finished;
  const edit = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    run.reset();
  };
  return (
    <TaskDialog
      id="import-disk"
      title={t.importDisk.title}
      run={run}
      invalid={!!shownUrlErr || !!shownNameErr || !!shaErr}
      onSubmit={() => {
        setTried(true);
        if (urlErr || nameErr || shaErr) return;
        run.start(importBody({ name, url, sha256, format }));
      }}
      onClose={onClose}
      submitLabel={t.importDisk.submit}
      busyLabel={t.importDisk.busy}
      error={refusedAt ? null : run.error}
      finished={finished}
      after={
        <>
          {run.busy && run.task && <p className="field-hint" data-testid="import-disk-phases">{t.importDisk.phases}</p>}
          <DiskLinks label={made.length > 1 ? t.importDisk.doneMany(made.length) : t.importDisk.done} links={resultDiskLinks(run.task, disks.data)} onFollow={onClose} testId="import-disk-done" />
        </>
      }
    >
      <p className="muted small">{t.importDisk.intro}</p>
      <Field label={t.importDisk.url} error={shownUrlErr ?? refusal('url')} hint={t.importDisk.urlHint}>
        <input data-testid="import-disk-url" type="url" value={url} autoFocus autoComplete="off" spellCheck={false} disabled={locked} placeholder="https://"
          onChange={(e) => {
            edit(setUrl)(e.target.value);
            if (!nameEdited) setName(suggestImportName(e.target.value));
          }} />
      </Field>
      <Field label={t.importDisk.name} error={shownNameErr ?? refusal('name')} hint={t.importDisk.nameHint}>
        <input data-testid="import-disk-name" value={name} autoComplete="off" spellCheck={false} disabled={locked}
          onChange={(e) => { setNameEdited(true); edit(setName)(e.target.value); }} />
      </Field>
      <Field label={t.importDisk.sha256} error={shaErr ?? refusal('sha256')} hint={t.importDisk.sha256Hint}>
        <input data-testid="import-disk-sha256" value={sha256} autoComplete="off" spellCheck={false} disabled={locked} className="mono"
          onChange={(e) => edit(setSha256)(e.target.value)} />
      </Field>
      <Field label={t.importDisk.format} error={refusal('format')} hint={t.importDisk.formatHint}>
        <DiskFormatSelect value={format} onChange={edit(setFormat)} disabled={locked} testId="import-disk-format" />
      </Field>
    </TaskDialog>
  );
}
