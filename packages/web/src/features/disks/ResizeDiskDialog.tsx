import { useState } from 'react';
import type { Disk } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { Field } from '../../components/Field';
import { formatBytes } from '../../lib/format';
import { MAX_DISK_SIZE_GB, parseIntStrict } from '../../lib/validation';
import { t } from '../../i18n';
import { TaskDialog } from '../tasks/TaskDialog';
import { useTaskRun } from '../tasks/useTaskRun';
import { resizeSizeError } from './storageRules';

/** Grow a disk: current size, the new one, why only growing. Stays open until the task has ended. */
export function ResizeDiskDialog({ disk, virtualSize, running, onClose }: { disk: Disk; virtualSize?: number; running: boolean; onClose: () => void }) {
  const [size, setSize] = useState(String(disk.size + 1));
  // Mounted only while open (see DisksPage), so every opening starts from the disk's size now.
  const run = useTaskRun((gb: number) => disksApi.resize(disk.id, gb), () => onClose());
  const sizeErr = resizeSizeError(disk.size, size);
  const virtual = virtualSize ?? disk.info?.['virtual-size'];
  return (
    <TaskDialog
      id="resize-disk"
      title={t.storage.resizeTitle(disk.name)}
      run={run}
      invalid={!!sizeErr}
      onSubmit={() => run.start(parseIntStrict(size)!)}
      onClose={onClose}
      submitLabel={t.storage.resizeSubmit}
      busyLabel={t.storage.resizing}
      testIds={{ progress: 'resize-progress', error: 'resize-error' }}
    >
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
    </TaskDialog>
  );
}
