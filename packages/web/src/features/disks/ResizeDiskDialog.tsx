import { useState, type FormEvent } from 'react';
import type { Disk } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { formatBytes } from '../../lib/format';
import { MAX_DISK_SIZE_GB, parseIntStrict } from '../../lib/validation';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { resizeSizeError } from './storageRules';

/** Grow a disk: current size, the new one, why only growing. Stays open until the task has ended. */
export function ResizeDiskDialog({ disk, virtualSize, running, onClose }: { disk: Disk; virtualSize?: number; running: boolean; onClose: () => void }) {
  const [size, setSize] = useState(String(disk.size + 1));
  const run = useTaskRun((gb: number) => disksApi.resize(disk.id, gb), () => close());
  const sizeErr = resizeSizeError(disk.size, size);
  // Mounted only while open (see DisksPage), so every opening starts from the disk's size now.
  function close() {
    run.reset();
    onClose();
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!sizeErr) run.start(parseIntStrict(size)!);
  };
  const virtual = virtualSize ?? disk.info?.['virtual-size'];
  return (
    <Dialog
      open
      onClose={close}
      title={t.storage.resizeTitle(disk.name)}
      testId="resize-disk-dialog"
      locked={run.busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={run.busy}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="resize-disk-form" busy={run.busy} disabled={!!sizeErr} data-testid="resize-disk-submit">
            {run.busy ? t.storage.resizing : t.storage.resizeSubmit}
          </Button>
        </>
      }
    >
      <form id="resize-disk-form" className="form" onSubmit={submit} noValidate>
        <dl className="props">
          <dt>{t.storage.currentSize}</dt>
          <dd data-testid="resize-current">{t.units.gb(disk.size)}{virtual != null && ` (${formatBytes(virtual)})`}</dd>
        </dl>
        <Field label={t.storage.newSize} error={sizeErr}>
          <input data-testid="resize-size" type="number" inputMode="numeric" min={disk.size + 1} max={MAX_DISK_SIZE_GB} value={size} autoFocus disabled={run.busy}
            onChange={(e) => { setSize(e.target.value); run.reset(); }} />
        </Field>
        <p className="field-hint" data-testid="resize-grow-only">{t.storage.growOnly}</p>
        {running && <p className="field-hint">{t.storage.runningNote}</p>}
        <TaskRunProgress task={run.task} testId="resize-progress" />
        <ErrorText error={run.error} testId="resize-error" />
      </form>
    </Dialog>
  );
}
