import { useMemo, useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { CreateVmBody, DiskFormat, Vm } from '@qemu-manager/contract';
import { disksApi, vmsApi } from '../../api/endpoints';
import { onServerEvent } from '../../api/events';
import { addCreatedDisk, upsertVm, useHealth, useImages, useIsos, useVms } from '../../api/queries';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
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
import { resultId, TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { CloudInitFields } from './CloudInitFields';
import { cloudInitErrors, cloudInitRefusalField, EMPTY_CLOUD_INIT, type CloudInitDraft } from './cloudInitForm';
import { CREATE_SOURCES, hardwareForCreate, imageCreateBody, imageMinGb, templateCreateBody, type CreateSource } from './createSource';
import { HardwareFields } from './HardwareFields';
import { DEFAULT_DRAFT, hardwareErrors, type HardwareDraft } from './hardwareRules';

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
  // issue 12
  source: CreateSource;
  image: string;
  /** The image disk's size as typed; '' means the image's own size. */
  imageDiskSize: string;
  linked: boolean;
  template: string;
  hardware: HardwareDraft;
  cloudInit: CloudInitDraft;
}

const INITIAL: Form = {
  name: '', cpus: '1', memory: '1024', withDisk: true, diskName: '', diskNameEdited: false, diskSize: '20', diskFormat: 'qcow2', isoPath: '',
  source: 'empty', image: '', imageDiskSize: '', linked: true, template: '', hardware: DEFAULT_DRAFT, cloudInit: EMPTY_CLOUD_INIT,
};

/** `template` / `image`: open with this template or image chosen (a template's "New VM from template", an image's "New VM"). */
export function CreateVmDialog({ open, onClose, template, image: imageName }: { open: boolean; onClose: () => void; template?: string; image?: string }) {
  const qc = useQueryClient();
  const health = useHealth();
  const isos = useIsos();
  const vms = useVms();
  const images = useImages(open);
  const limits = health.data?.host ?? FALLBACK_LIMITS;
  const initial: Form = template ? { ...INITIAL, source: 'template', template } : imageName ? { ...INITIAL, source: 'image', image: imageName } : INITIAL;
  const [form, setForm] = useState<Form>(initial);
  // An image or template create is one request answered with a task; it opens the new VM when done.
  const run = useTaskRun((body: CreateVmBody) => vmsApi.createFrom(body), (task) => {
    const made = resultId(task, 'vm');
    reset();
    onClose();
    if (made) navigate(paths.vm(made));
  });
  const templates = useMemo(() => (vms.data ?? []).filter((v) => v.template).sort((a, b) => a.name.localeCompare(b.name)), [vms.data]);
  const image = images.data?.find((i) => i.name === form.image);
  const minGb = image ? imageMinGb(image) : 1;
  const [submitted, setSubmitted] = useState(false);
  const [steps, setSteps] = useState<Step[] | null>(null);
  const [running, setRunning] = useState(false);
  const [created, setCreated] = useState<Vm | null>(null);

  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));
  const diskName = form.diskNameEdited ? form.diskName : defaultDiskName(form.name);

  const errors = useMemo(() => {
    const e: Partial<Record<'name' | 'cpus' | 'memory' | 'diskName' | 'diskSize' | 'image' | 'imageDiskSize' | 'template' | 'hardware' | 'cloudInit', string>> = {};
    if (!isValidVmName(form.name)) e.name = t.createVm.nameInvalid;
    else if (vms.data?.some((v) => v.name === form.name && v.id !== resultId(run.task, 'vm'))) e.name = t.createVm.nameTaken;
    if (form.source !== 'template') {
      if (!inRange(parseIntStrict(form.cpus), 1, limits.cpus)) e.cpus = t.createVm.cpusInvalid(limits.cpus);
      if (!inRange(parseIntStrict(form.memory), MIN_MEMORY_MIB, limits.memoryMiB)) e.memory = t.createVm.memoryInvalid(MIN_MEMORY_MIB, limits.memoryMiB);
      if (hardwareErrors(form.hardware).length) e.hardware = 'invalid';
    }
    if (form.source === 'empty' && form.withDisk) {
      if (!isValidDiskName(diskName)) e.diskName = t.disks.nameInvalid;
      if (!inRange(parseIntStrict(form.diskSize), 1, MAX_DISK_SIZE_GB)) e.diskSize = t.createVm.diskSizeInvalid(MAX_DISK_SIZE_GB);
    }
    if (form.source === 'image') {
      if (!form.image) e.image = t.createVm.imageRequired;
      if (form.imageDiskSize.trim() && !inRange(parseIntStrict(form.imageDiskSize), minGb, MAX_DISK_SIZE_GB)) e.imageDiskSize = t.createVm.imageDiskSizeInvalid(minGb, MAX_DISK_SIZE_GB);
    }
    if (form.source === 'template' && !form.template) e.template = t.createVm.templateRequired;
    if (form.source !== 'empty' && Object.keys(cloudInitErrors(form.cloudInit)).length) e.cloudInit = 'invalid';
    return e;
  }, [form, diskName, limits, vms.data, minGb, run.task]);
  const show = (k: keyof typeof errors, touched: boolean) => (submitted || touched ? errors[k] : undefined);

  const reset = () => {
    setForm(initial);
    setSubmitted(false);
    setSteps(null);
    setCreated(null);
    run.reset();
  };
  const close = () => {
    if (running || run.busy) return;
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
    if (Object.keys(errors).length > 0 || running || run.busy) return;
    const cpus = parseIntStrict(form.cpus)!;
    const memory = parseIntStrict(form.memory)!;
    if (form.source === 'image') {
      const size = form.imageDiskSize.trim() ? parseIntStrict(form.imageDiskSize)! : minGb;
      run.start(imageCreateBody({ name: form.name, cpus, memory, hardware: form.hardware, cloudInit: form.cloudInit }, form.image, size, form.linked));
      return;
    }
    if (form.source === 'template') {
      run.start(templateCreateBody({ name: form.name, cloudInit: form.cloudInit }, form.template));
      return;
    }
    setRunning(true);
    const result = await runCreateVm(
      {
        vm: { name: form.name, cpus, memory, ...hardwareForCreate(form.hardware) },
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
      <Button onClick={close} disabled={running || run.busy}>{t.common.cancel}</Button>
      <Button variant="primary" type="submit" form="create-vm-form" busy={running || run.busy} data-testid="create-vm-submit">
        {running || run.busy ? t.createVm.working : t.createVm.submit}
      </Button>
    </>
  );

  return (
    <Dialog open={open} onClose={close} title={t.createVm.title} testId="create-vm-dialog" locked={running || run.busy} footer={footer} size="lg">
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
          <fieldset className="fieldset choices" data-testid="create-vm-source" disabled={run.busy}>
            <legend>{t.createVm.source}</legend>
            {CREATE_SOURCES.map((src) => (
              <label key={src} className="choice">
                <input type="radio" name="create-vm-source" value={src} checked={form.source === src} onChange={() => { set({ source: src }); run.reset(); }} data-testid={`create-vm-source-${src}`} />
                <span className="choice-text">
                  <span className="choice-title">{t.createVm.sources[src]}</span>
                  <span className="field-hint">{t.createVm.sourceHints[src]}</span>
                </span>
              </label>
            ))}
          </fieldset>
          {form.source === 'image' && (
            <fieldset className="fieldset" disabled={run.busy}>
              <legend>{t.createVm.image}</legend>
              {images.data && images.data.length === 0 ? (
                <p className="field-hint" data-testid="create-vm-image-none">{t.createVm.imageNone}</p>
              ) : (
                <Field label={t.createVm.image} error={show('image', false)}>
                  <select data-testid="create-vm-image" value={form.image} onChange={(e) => { set({ image: e.target.value, imageDiskSize: '' }); run.reset(); }}>
                    <option value="">{t.createVm.imagePick}</option>
                    {images.data?.map((i) => <option key={i.name} value={i.name}>{i.name} ({formatBytes(i.virtualSize)})</option>)}
                  </select>
                </Field>
              )}
              <div className="form-row">
                <Field label={t.createVm.imageDiskSize} hint={t.createVm.imageDiskSizeHint(minGb)} error={show('imageDiskSize', true)}>
                  <input data-testid="create-vm-image-size" type="number" inputMode="numeric" min={minGb} max={MAX_DISK_SIZE_GB} value={form.imageDiskSize} placeholder={String(minGb)}
                    onChange={(e) => set({ imageDiskSize: e.target.value })} />
                </Field>
              </div>
              <div className="choices" role="radiogroup" aria-label={t.createVm.diskCopy} data-testid="create-vm-linked">
                {(['linked', 'full'] as const).map((m) => (
                  <label key={m} className="choice">
                    <input type="radio" name="create-vm-linked" checked={form.linked === (m === 'linked')} onChange={() => set({ linked: m === 'linked' })} data-testid={`create-vm-linked-${m}`} />
                    <span className="choice-text">
                      <span className="choice-title">{t.createVm.diskCopies[m]}</span>
                      <span className="field-hint">{t.createVm.diskCopyHints[m]}</span>
                    </span>
                  </label>
                ))}
              </div>
            </fieldset>
          )}
          {form.source === 'template' && (
            <fieldset className="fieldset" disabled={run.busy}>
              <legend>{t.createVm.template}</legend>
              {templates.length === 0 ? (
                <p className="field-hint" data-testid="create-vm-template-none">{t.createVm.templateNone}</p>
              ) : (
                <Field label={t.createVm.template} error={show('template', false)}>
                  <select data-testid="create-vm-template" value={form.template} onChange={(e) => set({ template: e.target.value })}>
                    <option value="">{t.createVm.templatePick}</option>
                    {templates.map((v) => <option key={v.id} value={v.id}>{v.name} ({t.units.cpus(v.cpus)} · {formatMiB(v.memory)})</option>)}
                  </select>
                </Field>
              )}
            </fieldset>
          )}
          {form.source !== 'template' && (
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
          )}

          {form.source !== 'template' && (
            <fieldset className="fieldset" disabled={run.busy}>
              <legend>{t.createVm.hardwareSection}</legend>
              <HardwareFields draft={form.hardware} onChange={(hardware) => set({ hardware })} isos={isos.data} withPreset testId="create-vm-hw" showErrors={submitted} />
            </fieldset>
          )}

          {form.source !== 'empty' && (
            <fieldset className="fieldset" disabled={run.busy}>
              <legend>{t.cloudInit.section}</legend>
              <p className="field-hint">{t.cloudInit.createHint}</p>
              <CloudInitFields draft={form.cloudInit} onChange={(cloudInit) => { set({ cloudInit }); run.reset(); }} refusal={run.error} testId="create-vm-ci" />
            </fieldset>
          )}

          {form.source !== 'empty' && (
            <>
              <TaskRunProgress task={run.task} testId="create-vm-progress" />
              <ErrorText error={cloudInitRefusalField(run.error) ? null : run.error} testId="create-vm-error" />
            </>
          )}

          {form.source === 'empty' && (
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
          )}

          {form.source === 'empty' && (
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
          )}
        </form>
      )}
    </Dialog>
  );
}
