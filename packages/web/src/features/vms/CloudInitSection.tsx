import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { CloudInit, Vm } from '@qemu-manager/contract';
import { cloudInitApi } from '../../api/endpoints';
import { qk, useCloudInit } from '../../api/queries';
import { useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorText } from '../../components/ErrorText';
import { t } from '../../i18n';
import { CloudInitFields } from './CloudInitFields';
import { cloudInitBody, cloudInitErrors, cloudInitRefusalField, draftOfCloudInit, type CloudInitDraft } from './cloudInitForm';

/** The VM page's Cloud-init section (GET/PUT/DELETE /api/vms/{id}/cloud-init). The guest gets a change at its next start. */
export function CloudInitSection({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const readOnly = useReadOnlyAccess();
  const config = useCloudInit(vm);
  const [draft, setDraft] = useState<CloudInitDraft>(() => draftOfCloudInit(config.data));
  const [dirty, setDirty] = useState(false);
  const [confirmRemove, setConfirmRemove] = useState(false);
  // Follow the server's config until the user starts editing.
  useEffect(() => {
    if (!dirty) setDraft(draftOfCloudInit(config.data));
  }, [config.data, dirty]);
  const invalid = Object.keys(cloudInitErrors(draft)).length > 0;
  const stored = (c: CloudInit | null) => {
    qc.setQueryData([...qk.cloudInit(vm.id), true], c);
    void qc.invalidateQueries({ queryKey: qk.vm(vm.id) });
    void qc.invalidateQueries({ queryKey: qk.vms });
  };
  const save = useMutation({
    mutationFn: () => cloudInitApi.put(vm.id, cloudInitBody(draft)),
    onSuccess: (c) => {
      setDirty(false);
      setDraft(draftOfCloudInit(c));
      stored(c);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!invalid && dirty) save.mutate();
  };
  const refusedAt = cloudInitRefusalField(save.error);
  return (
    <section className="card" data-testid="vm-cloud-init">
      <div className="card-header">
        <h2>{t.cloudInit.title}</h2>
        {vm.cloudInit && !readOnly && (
          <div className="card-actions">
            <Button size="sm" variant="ghost" onClick={() => setConfirmRemove(true)} data-testid="ci-remove">{t.cloudInit.remove}</Button>
          </div>
        )}
      </div>
      <p className="muted small" data-testid="ci-state">{vm.cloudInit ? t.cloudInit.intro : t.cloudInit.none}</p>
      <ErrorText error={config.isError ? `${t.cloudInit.loadFailed} ${(config.error as Error).message}` : null} testId="ci-load-error" />
      <form className="form" onSubmit={submit}>
        <CloudInitFields draft={draft} onChange={(d) => { setDraft(d); setDirty(true); save.reset(); }} disabled={readOnly || save.isPending || config.isPending}
          refusal={save.error} testId="ci" />
        {!readOnly && (
          <div className="form-actions">
            {save.isSuccess && !dirty && <span className="ok-text" role="status" data-testid="ci-saved">{t.cloudInit.saved}</span>}
            {dirty && <Button onClick={() => { setDirty(false); save.reset(); }} data-testid="ci-cancel">{t.common.cancel}</Button>}
            <Button type="submit" variant="primary" disabled={!dirty || invalid} busy={save.isPending} data-testid="ci-save">{t.cloudInit.save}</Button>
          </div>
        )}
        <ErrorText error={refusedAt ? null : save.error} testId="ci-error" />
      </form>
      <ConfirmDialog
        open={confirmRemove}
        title={t.cloudInit.removeTitle}
        body={<p>{t.cloudInit.removeBody}</p>}
        confirmLabel={t.cloudInit.removeConfirm}
        danger
        testId="ci-remove-dialog"
        onClose={() => setConfirmRemove(false)}
        onConfirm={async () => {
          await cloudInitApi.remove(vm.id);
          setDirty(false);
          stored(null);
        }}
      />
    </section>
  );
}
