import { MAX_USER_DATA_BYTES } from '@qemu-manager/contract';
import { errorMessage } from '../../api/client';
import { Button } from '../../components/Button';
import { Field } from '../../components/Field';
import { formatBytes } from '../../lib/format';
import { t } from '../../i18n';
import { cloudInitErrors, cloudInitRefusalField, MAX_PASSWORD, MAX_SSH_KEYS, type CloudInitDraft, type CloudInitField } from './cloudInitForm';

interface Props {
  draft: CloudInitDraft;
  onChange: (next: CloudInitDraft) => void;
  disabled?: boolean;
  /** The server's refusal of the last save: shown next to the field it names (the YAML line next to the editor). */
  refusal?: unknown;
  testId: string;
}

/** The words for a field's client-side error, or null. */
export function cloudInitFieldError(draft: CloudInitDraft, field: CloudInitField): string | null {
  const e = cloudInitErrors(draft);
  switch (field) {
    case 'hostname': return e.hostname ? t.cloudInit.hostnameInvalid : null;
    case 'user': return e.user ? t.cloudInit.userInvalid : null;
    case 'password': return e.password ? t.cloudInit.passwordTooLong(MAX_PASSWORD) : null;
    case 'sshKeys': return e.sshKeys === 'tooMany' ? t.cloudInit.sshKeysTooMany(MAX_SSH_KEYS) : e.sshKeys ? t.cloudInit.sshKeysInvalid(e.sshKeys.join(', ')) : null;
    case 'userData': return e.userData ? t.cloudInit.userDataTooLarge(formatBytes(MAX_USER_DATA_BYTES)) : null;
  }
}

/** Host name, user, password (never shown: "set", blank keeps, Remove sends null), SSH keys, and the full user-data editor. */
export function CloudInitFields({ draft, onChange, disabled, refusal, testId }: Props) {
  const set = (patch: Partial<CloudInitDraft>) => onChange({ ...draft, ...patch });
  const refusedAt = cloudInitRefusalField(refusal);
  const err = (f: CloudInitField) => cloudInitFieldError(draft, f) ?? (refusedAt === f ? errorMessage(refusal) : null);
  return (
    <div className="cloud-init-fields" data-testid={`${testId}-fields`}>
      <div className="form-row">
        <Field label={t.cloudInit.hostname} error={err('hostname')}>
          <input data-testid={`${testId}-hostname`} value={draft.hostname} autoComplete="off" spellCheck={false} disabled={disabled} onChange={(e) => set({ hostname: e.target.value })} />
        </Field>
        <Field label={t.cloudInit.user} hint={t.cloudInit.userHint} error={err('user')}>
          <input data-testid={`${testId}-user`} value={draft.user} autoComplete="off" spellCheck={false} disabled={disabled} onChange={(e) => set({ user: e.target.value })} />
        </Field>
      </div>
      <Field label={t.cloudInit.password} error={err('password')}
        hint={draft.clearPassword ? t.cloudInit.passwordCleared : draft.passwordSet ? t.cloudInit.passwordSet : t.cloudInit.passwordNew}>
        <input data-testid={`${testId}-password`} type="password" value={draft.password} autoComplete="new-password" disabled={disabled || draft.clearPassword}
          placeholder={draft.passwordSet && !draft.clearPassword ? '••••••••' : ''} onChange={(e) => set({ password: e.target.value })} />
      </Field>
      {draft.passwordSet && (
        <div className="form-actions form-actions-start">
          {draft.clearPassword ? (
            <Button size="sm" onClick={() => set({ clearPassword: false })} disabled={disabled} data-testid={`${testId}-password-keep`}>{t.cloudInit.passwordUndo}</Button>
          ) : (
            <Button size="sm" variant="ghost" onClick={() => set({ clearPassword: true, password: '' })} disabled={disabled} data-testid={`${testId}-password-clear`}>{t.cloudInit.passwordClear}</Button>
          )}
        </div>
      )}
      <Field label={t.cloudInit.sshKeys} hint={t.cloudInit.sshKeysHint} error={err('sshKeys')}>
        <textarea data-testid={`${testId}-ssh-keys`} className="mono" rows={3} value={draft.sshKeys} spellCheck={false} disabled={disabled} onChange={(e) => set({ sshKeys: e.target.value })} />
      </Field>
      <Field label={t.cloudInit.userData} hint={t.cloudInit.userDataHint} error={err('userData')}>
        <textarea data-testid={`${testId}-user-data`} className="mono code-editor" rows={10} value={draft.userData} spellCheck={false} disabled={disabled}
          placeholder={'#cloud-config\npackages:\n  - htop\nruncmd:\n  - echo hello'} onChange={(e) => set({ userData: e.target.value })} />
      </Field>
    </div>
  );
}
