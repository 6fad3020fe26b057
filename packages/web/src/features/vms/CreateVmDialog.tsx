import { useMemo, useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { DiskFormat, Vm } from '@qemu-manager/contract';
import { disksApi, vmsApi } from '../../api/endpoints';
import { onServerEvent } from '../../api/events';
import { addCreatedDisk, upsertVm, useHealth, useIsos, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { Field } from '../../components/Field';
import { DiskFormatSelect } from '../disks/DiskFormatSelect';
import { formatBytes, formatMiB } from '../../lib/format';
import {
  defaultDiskName, FALLBACK_LIMITS, inRange, isValidDiskName, isValidVmName, MAX_DISK_SIZE_GB, MIN_MEMORY_MIB, parseIntStrict,
} from '../../lib/validation';
import { t } from '../../i18n';
import { navigate, paths } from '../../router';
import { runCreateVm, waitForDiskReady, type FlowDeps, type Step } from './createVmFlow';
import { StepList } from './StepList';

interface Form {
  name: string;
  cpus: string;
  memory: string;
  withDisk: boolean;
  diskName: string;
  diskNameEdited: boolean;
  diskSize: string;
  diskFormat: DiskFormat;
  isoPath: string;
}

const INITIAL: Form = {
  name: '', cpus: '1', memory: '1024', withDisk: true, diskName: '', diskNameEdited: false, diskSize: '20', diskFormat: 'qcow2', isoPath: '',
};

export function CreateVmDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const health = useHealth();
  const isos = useIsos();
  const vms = useVms();
  const limits = health.data?.host ?? FALLBACK_LIMITS;
  const [form, setForm] = useState<Form>(INITIAL);
  const [submitted, setSubmitted] = useState(false);
  const [steps, setSteps] = useState<Step[] | null>(null);
  const [running, setRunning] = useState(false);
  const [created, setCreated] = useState<Vm | null>(null);

  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));
  const diskName = form.diskNameEdited ? form.diskName : defaultDiskName(form.name);

  const errors = useMemo(() => {
    const e: Partial<Record<'name' | 'cpus' | 'memory' | 'diskName' | 'diskSize', string>> = {};
    if (!isValidVmName(form.name)) e.name = t.createVm.nameInvalid;
    else if (vms.data?.some((v) => v.name === form.name)) e.name = t.createVm.nameTaken;
    if (!inRange(parseIntStrict(form.cpus), 1, limits.cpus)) e.cpus = t.createVm.cpusInvalid(limits.cpus);
    if (!inRange(parseIntStrict(form.memory), MIN_MEMORY_MIB, limits.memoryMiB)) e.memory = t.createVm.memoryInvalid(MIN_MEMORY_MIB, limits.memoryMiB);
    if (form.withDisk) {
      if (!isValidDiskName(diskName)) e.diskName = t.disks.nameInvalid;
      if (!inRange(parseIntStrict(form.diskSize), 1, MAX_DISK_SIZE_GB)) e.diskSize = t.createVm.diskSizeInvalid(MAX_DISK_SIZE_GB);
    }
    return e;
  }, [form, diskName, limits, vms.data]);
  const show = (k: keyof typeof errors, touched: boolean) => (submitted || touched ? errors[k] : undefined);

  const reset = () => {
    setForm(INITIAL);
    setSubmitted(false);
    setSteps(null);
    setCreated(null);
  };
  const close = () => {
    if (running) return;
    reset();
    onClose();
  };

  const deps: FlowDeps = {
    createVm: async (body) => {
      const vm = await vmsApi.create(body);
      upsertVm(qc, vm);
      return vm;
    },
    createDisk: async (body) => {
      const d = await disksApi.create(body);
      addCreatedDisk(qc, d);
      return d;
    },
    waitForDisk: (d) => waitForDiskReady(d, { get: (id) => disksApi.get(id), subscribe: onServerEvent }),
    attachDisk: async (id, path) => {
      const vm = await vmsApi.attachDisk(id, path);
      upsertVm(qc, vm);
      return vm;
    },
    mountIso: async (id, path) => {
      const vm = await vmsApi.mountIso(id, path);
      upsertVm(qc, vm);
      return vm;
    },
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (Object.keys(errors).length > 0 || running) return;
    setRunning(true);
    const result = await runCreateVm(
      {
        vm: { name: form.name, cpus: parseIntStrict(form.cpus)!, memory: parseIntStrict(form.memory)! },
        disk: form.withDisk ? { name: diskName, size: parseIntStrict(form.diskSize)!, format: form.diskFormat } : undefined,
        isoPath: form.isoPath || undefined,
      },
      deps,
      setSteps,
    );
    setRunning(false);
    setCreated(result.vm);
    if (result.ok) {
      reset();
      onClose();
    }
  };

  const finished = steps !== null && !running;
  const memMiB = parseIntStrict(form.memory);
  const footer = finished ? (
    <>
      {created && (
        <Button onClick={() => { const id = created.id; close(); navigate(paths.vm(id)); }} data-testid="create-vm-open-settings">
          {t.createVm.openVm}
        </Button>
      )}
      <Button variant="primary" onClick={close} data-testid="create-vm-close">
        {t.common.close}
      </Button>
    </>
  ) : (
    <>
      <Button onClick={close} disabled={running}>{t.common.cancel}</Button>
      <Button variant="primary" type="submit" form="create-vm-form" busy={running} data-testid="create-vm-submit">
        {running ? t.createVm.working : t.createVm.submit}
      </Button>
    </>
  );

  return (
    <Dialog open={open} onClose={close} title={t.createVm.title} testId="create-vm-dialog" locked={running} footer={footer}>
      {steps ? (
        <>
          <StepList steps={steps} />
          {finished && created && <p className="note">{t.createVm.partial}</p>}
        </>
      ) : (
        <form id="create-vm-form" className="form" onSubmit={(e) => void submit(e)} noValidate>
          <Field label={t.createVm.name} hint={t.createVm.nameHint} error={show('name', form.name !== '')}>
            <input data-testid="create-vm-name" value={form.name} autoFocus autoComplete="off" spellCheck={false} onChange={(e) => set({ name: e.target.value })} />
          </Field>
          <div className="form-row">
            <Field label={t.createVm.cpus} hint={t.createVm.cpusHint(limits.cpus)} error={show('cpus', true)}>
              <input data-testid="create-vm-cpus" type="number" inputMode="numeric" min={1} max={limits.cpus} value={form.cpus} onChange={(e) => set({ cpus: e.target.value })} />
            </Field>
            <Field
              label={t.createVm.memory}
              hint={memMiB && memMiB >= 1024 ? `= ${formatMiB(memMiB)} · ${t.createVm.memoryHint(formatMiB(limits.memoryMiB))}` : t.createVm.memoryHint(formatMiB(limits.memoryMiB))}
              error={show('memory', true)}
            >
              <input data-testid="create-vm-memory" type="number" inputMode="numeric" min={MIN_MEMORY_MIB} max={limits.memoryMiB} step={256} value={form.memory} onChange={(e) => set({ memory: e.target.value })} />
            </Field>
          </div>

          <fieldset className="fieldset">
            <legend>{t.createVm.diskSection}</legend>
            <label className="check">
              <input type="checkbox" data-testid="create-vm-disk-toggle" checked={form.withDisk} onChange={(e) => set({ withDisk: e.target.checked })} />
              {t.createVm.addDisk}
            </label>
            {form.withDisk && (
              <div className="form-row form-row-3">
                <Field label={t.createVm.diskName} error={show('diskName', form.diskNameEdited)}>
                  <input data-testid="create-vm-disk-name" value={diskName} autoComplete="off" spellCheck={false} onChange={(e) => set({ diskName: e.target.value, diskNameEdited: true })} />
                </Field>
                <Field label={t.createVm.diskSize} error={show('diskSize', true)}>
                  <input data-testid="create-vm-disk-size" type="number" inputMode="numeric" min={1} max={MAX_DISK_SIZE_GB} value={form.diskSize} onChange={(e) => set({ diskSize: e.target.value })} />
                </Field>
                <Field label={t.createVm.diskFormat}>
                  <DiskFormatSelect testId="create-vm-disk-format" value={form.diskFormat} onChange={(diskFormat) => set({ diskFormat })} />
                </Field>
              </div>
            )}
          </fieldset>

          <fieldset className="fieldset">
            <legend>{t.createVm.isoSection}</legend>
            {isos.data && isos.data.length === 0 ? (
              <p className="field-hint">{t.createVm.isoEmpty}</p>
            ) : (
              <select aria-label={t.createVm.isoSection} data-testid="create-vm-iso" value={form.isoPath} onChange={(e) => set({ isoPath: e.target.value })}>
                <option value="">{t.createVm.isoNone}</option>
                {isos.data?.map((iso) => (
                  <option key={iso.path} value={iso.path}>
                    {iso.name} ({formatBytes(iso.size)})
                  </option>
                ))}
              </select>
            )}
          </fieldset>
        </form>
      )}
    </Dialog>
  );
}
