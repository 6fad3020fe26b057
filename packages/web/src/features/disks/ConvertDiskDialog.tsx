import { useState } from 'react';
import type { Disk, DiskFormat } from '@qemu-manager/contract';
import { errorMessage } from '../../api/client';
import { disksApi } from '../../api/endpoints';
import { useDisks } from '../../api/queries';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { TaskDialog } from '../tasks/TaskDialog';
import { useTaskRun } from '../tasks/useTaskRun';
import { DiskFormatSelect } from './DiskFormatSelect';
import { DiskLinks } from './DiskLinks';
import { refusalField, resultDiskIds, resultDiskLinks } from './importRules';
import { newDiskNameError, suggestCloneName } from './storageRules';

const OTHER: Record<DiskFormat, DiskFormat> = { qcow2: 'raw', raw: 'qcow2', vmdk: 'qcow2' };

/**
 * A copy of a disk in another format, as a new disk (this one stays). Every format is offered;
 * the server decides. Mounted only while open; when done, links the new disk.
 */
export function ConvertDiskDialog({ disk, ownerActive, onClose }: { disk: Disk; ownerActive: boolean; onClose: () => void }) {
  const disks = useDisks();
  const [format, setFormat] = useState<DiskFormat>(OTHER[disk.format] ?? 'qcow2');
  const suggest = (f: DiskFormat) => suggestCloneName(disk.name, (disks.data ?? []).map((d) => d.name), `-${f}`);
  const [name, setName] = useState(() => suggest(OTHER[disk.format] ?? 'qcow2'));
  const [nameEdited, setNameEdited] = useState(false);
  const run = useTaskRun((body: { name: string; format: DiskFormat }) => disksApi.convert(disk.id, body));
  const made = resultDiskIds(run.task);
  const nameErr = newDiskNameError(name, disks.data?.filter((d) => !made.includes(d.id)));
  const refusedAt = refusalField(run.error);
  const finished = run.succeeded;
  const locked = run.busy || finished;
  return (
    <TaskDialog
      id="convert-disk"
      title={t.convertDisk.title(disk.name)}
      run={run}
      invalid={!!nameErr}
      onSubmit={() => run.start({ name, format })}
      onClose={onClose}
      submitLabel={t.convertDisk.submit}
      busyLabel={t.convertDisk.busy}
      error={refusedAt === 'name' ? null : run.error}
      finished={finished}
      after={<DiskLinks label={t.convertDisk.done} links={resultDiskLinks(run.task, disks.data)} onFollow={onClose} testId="convert-disk-done" />}
    >
      <p className="muted small">{t.convertDisk.intro}</p>
      <Field label={t.convertDisk.format} hint={t.convertDisk.formatNote(disk.format)}>
        <DiskFormatSelect value={format} disabled={locked} testId="convert-disk-format"
          onChange={(f) => { setFormat(f); if (!nameEdited) setName(suggest(f)); run.reset(); }} />
      </Field>
      <Field label={t.convertDisk.name} error={nameErr ?? (refusedAt === 'name' ? errorMessage(run.error) : null)}>
        <input data-testid="convert-disk-name" value={name} autoFocus autoComplete="off" spellCheck={false} disabled={locked}
          onChange={(e) => { setName(e.target.value); setNameEdited(true); run.reset(); }} />
      </Field>
      {ownerActive && <p className="locked-reason">{t.convertDisk.notStopped}</p>}
    </TaskDialog>
  );
}
