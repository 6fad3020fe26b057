import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { DiskFormat } from '@qemu-manager/contract';
import { disksApi } from '../../api/endpoints';
import { addCreatedDisk } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { DiskFormatSelect } from './DiskFormatSelect';
import { inRange, isValidDiskName, MAX_DISK_SIZE_GB, parseIntStrict } from '../../lib/validation';
import { t } from '../../i18n';

export function CreateDiskDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [size, setSize] = useState('20');
  const [format, setFormat] = useState<DiskFormat>('qcow2');
  const [submitted, setSubmitted] = useState(false);
  const create = useMutation({
    mutationFn: () => disksApi.create({ name, size: parseIntStrict(size)!, format }),
    onSuccess: (d) => {
      addCreatedDisk(qc, d);
      close();
    },
  });
  const nameErr = isValidDiskName(name) ? null : t.disks.nameInvalid;
  const sizeErr = inRange(parseIntStrict(size), 1, MAX_DISK_SIZE_GB) ? null : t.createVm.diskSizeInvalid(MAX_DISK_SIZE_GB);
  function close() {
    setName('');
    setSize('20');
    setFormat('qcow2');
    setSubmitted(false);
    create.reset();
    onClose();
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (!nameErr && !sizeErr) create.mutate();
  };
  return (
    <Dialog
      open={open}
      onClose={close}
      title={t.disks.createTitle}
      testId="create-disk-dialog"
      locked={create.isPending}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={create.isPending}>{t.common.cancel}</Button>
          <Button variant="primary" type="submit" form="create-disk-form" busy={create.isPending} data-testid="create-disk-submit">{t.disks.submit}</Button>
        </>
      }
    >
      <form id="create-disk-form" className="form" onSubmit={submit} noValidate>
        <Field label={t.disks.name} error={submitted || name ? nameErr : null}>
          <input data-testid="create-disk-name" value={name} autoFocus autoComplete="off" spellCheck={false} onChange={(e) => { setName(e.target.value); create.reset(); }} />
        </Field>
        <div className="form-row">
          <Field label={t.disks.size} error={sizeErr}>
            <input data-testid="create-disk-size" type="number" inputMode="numeric" min={1} max={MAX_DISK_SIZE_GB} value={size} onChange={(e) => setSize(e.target.value)} />
          </Field>
          <Field label={t.disks.format}>
            <DiskFormatSelect testId="create-disk-format" value={format} onChange={setFormat} />
          </Field>
        </div>
        <p className="field-hint">{t.disks.formatHint}</p>
        <ErrorText error={create.error} testId="create-disk-error" />
      </form>
    </Dialog>
  );
}
