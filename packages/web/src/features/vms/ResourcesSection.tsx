import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { upsertVm, useHealth } from '../../api/queries';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { formatMiB } from '../../lib/format';
import { FALLBACK_LIMITS, inRange, MIN_MEMORY_MIB, parseIntStrict } from '../../lib/validation';
import { t } from '../../i18n';
import { canEditResources } from './actions';

export function ResourcesSection({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const limits = useHealth().data?.host ?? FALLBACK_LIMITS;
  const [cpus, setCpus] = useState(String(vm.cpus));
  const [memory, setMemory] = useState(String(vm.memory));
  const editable = canEditResources(vm.status);

  // Follow the server's values (events) until the user starts editing.
  const dirty = cpus !== String(vm.cpus) || memory !== String(vm.memory);
  const [editing, setEditing] = useState(false);
  // Once the VM runs, drop unsaved edits: they could not be saved anyway.
  useEffect(() => {
    if (!editable) setEditing(false);
  }, [editable]);
  useEffect(() => {
    if (!editing) {
      setCpus(String(vm.cpus));
      setMemory(String(vm.memory));
    }
  }, [vm.cpus, vm.memory, editing]);

  const save = useMutation({
    mutationFn: () => {
      const body: { cpus?: number; memory?: number } = {};
      if (cpus !== String(vm.cpus)) body.cpus = parseIntStrict(cpus)!;
      if (memory !== String(vm.memory)) body.memory = parseIntStrict(memory)!;
      return vmsApi.updateResources(vm.id, body);
    },
    onSuccess: (updated) => {
      upsertVm(qc, updated);
      setEditing(false);
    },
  });

  const cpuErr = inRange(parseIntStrict(cpus), 1, limits.cpus) ? null : t.createVm.cpusInvalid(limits.cpus);
  const memErr = inRange(parseIntStrict(memory), MIN_MEMORY_MIB, limits.memoryMiB) ? null : t.createVm.memoryInvalid(MIN_MEMORY_MIB, limits.memoryMiB);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!cpuErr && !memErr && dirty) save.mutate();
  };

  return (
    <section className="card" data-testid="vm-resources">
      <h2>{t.detail.resources}</h2>
      {!editable && <p className="locked-reason" data-testid="resources-locked">{t.detail.resourcesLocked}</p>}
      <form className="form" onSubmit={submit}>
        <div className="form-row">
          <Field label={t.createVm.cpus} error={editable ? cpuErr : null}>
            <input data-testid="resources-cpus" type="number" inputMode="numeric" min={1} max={limits.cpus} value={cpus} disabled={!editable}
              onChange={(e) => { setEditing(true); setCpus(e.target.value); save.reset(); }} />
          </Field>
          <Field label={t.createVm.memory} hint={!memErr && (parseIntStrict(memory) ?? 0) >= 1024 ? `= ${formatMiB(parseIntStrict(memory)!)}` : undefined} error={editable ? memErr : null}>
            <input data-testid="resources-memory" type="number" inputMode="numeric" step={256} min={MIN_MEMORY_MIB} max={limits.memoryMiB} value={memory} disabled={!editable}
              onChange={(e) => { setEditing(true); setMemory(e.target.value); save.reset(); }} />
          </Field>
        </div>
        {editable && (
          <div className="form-actions">
            {save.isSuccess && !dirty && <span className="ok-text" role="status">{t.detail.saved}</span>}
            {dirty && (
              <Button onClick={() => { setEditing(false); setCpus(String(vm.cpus)); setMemory(String(vm.memory)); save.reset(); }}>
                {t.common.cancel}
              </Button>
            )}
            <Button type="submit" variant="primary" disabled={!dirty || !!cpuErr || !!memErr} busy={save.isPending} data-testid="resources-save">
              {t.common.save}
            </Button>
          </div>
        )}
        <ErrorText error={save.error} testId="resources-error" />
      </form>
    </section>
  );
}
