import { useId, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { ApiToken, CreatedToken, TokenScope } from '@qemu-manager/contract';
import { tokensApi } from '../../api/endpoints';
import { qk } from '../../api/queries';
import { Button } from '../../components/Button';
import { CopyButton } from '../../components/CopyButton';
import { Dialog } from '../../components/Dialog';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { formatDateTime } from '../../lib/format';
import { isValidTokenName } from '../../lib/validation';
import { t } from '../../i18n';
import { createTokenBody, curlExample, EXPIRY_CHOICES, expiresInSeconds, type ExpiryChoice } from './tokenRules';

const SCOPES: readonly TokenScope[] = ['read', 'admin'];

/** Form first; after creation the same dialog shows the secret, once. */
export function CreateTokenDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [scope, setScope] = useState<TokenScope>('read');
  const [expiry, setExpiry] = useState<ExpiryChoice>('never');
  const [submitted, setSubmitted] = useState(false);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const create = useMutation({
    mutationFn: () => tokensApi.create(createTokenBody(name, scope, expiry)),
    onSuccess: (tok) => {
      setCreated(tok);
      // The list never carries the secret: keep only the public fields in the cache.
      const listed: ApiToken = { id: tok.id, name: tok.name, scope: tok.scope, createdAt: tok.createdAt, expiresAt: tok.expiresAt, lastUsedAt: null, revokedAt: null };
      qc.setQueryData<ApiToken[]>(qk.tokens, (old) => (old ? [...old.filter((x) => x.id !== tok.id), listed] : old));
      void qc.invalidateQueries({ queryKey: qk.audit });
    },
  });
  const nameErr = isValidTokenName(name.trim()) ? null : t.tokens.nameInvalid;
  function close() {
    setName('');
    setScope('read');
    setExpiry('never');
    setSubmitted(false);
    setCreated(null);
    create.reset();
    onClose();
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (!nameErr) create.mutate();
  };
  const seconds = expiresInSeconds(expiry);
  const footer = created ? (
    <Button variant="primary" onClick={close} data-testid="create-token-done">{t.tokens.done}</Button>
  ) : (
    <>
      <Button onClick={close} disabled={create.isPending}>{t.common.cancel}</Button>
      <Button variant="primary" type="submit" form="create-token-form" busy={create.isPending} data-testid="create-token-submit">{t.tokens.submit}</Button>
    </>
  );
  return (
    <Dialog
      open={open}
      onClose={close}
      title={created ? t.tokens.createdTitle(created.name) : t.tokens.createTitle}
      testId="create-token-dialog"
      locked={create.isPending}
      footer={footer}
    >
      {created ? (
        <CreatedSecret token={created} />
      ) : (
        <form id="create-token-form" className="form" onSubmit={submit} noValidate>
          <Field label={t.tokens.name} hint={t.tokens.nameHint} error={submitted || name ? nameErr : null}>
            <input data-testid="create-token-name" value={name} maxLength={63} autoFocus autoComplete="off" spellCheck={false} onChange={(e) => { setName(e.target.value); create.reset(); }} />
          </Field>
          <fieldset className="fieldset choices">
            <legend>{t.tokens.scope}</legend>
            {SCOPES.map((s) => (
              <label key={s} className="choice">
                <input type="radio" name="token-scope" value={s} checked={scope === s} onChange={() => setScope(s)} data-testid={`create-token-scope-${s}`} />
                <span className="choice-text">
                  <span className="choice-title">{t.tokens.scopes[s]}</span>
                  <span className="field-hint">{t.tokens.scopeHints[s]}</span>
                </span>
              </label>
            ))}
          </fieldset>
          <Field label={t.tokens.expiry} hint={seconds ? t.tokens.expiresOn(formatDateTime(new Date(Date.now() + seconds * 1000).toISOString())) : t.tokens.neverExpires}>
            <select data-testid="create-token-expiry" value={expiry} onChange={(e) => setExpiry(e.target.value as ExpiryChoice)}>
              {EXPIRY_CHOICES.map((c) => <option key={c} value={c}>{t.tokens.expiryChoices[c]}</option>)}
            </select>
          </Field>
          <ErrorText error={create.error} testId="create-token-error" />
        </form>
      )}
    </Dialog>
  );
}

function CreatedSecret({ token }: { token: CreatedToken }) {
  const id = useId();
  const example = curlExample(location.origin, token.token);
  return (
    <div className="form" data-testid="token-created">
      <p className="warn-text" role="status" data-testid="token-secret-warning">{t.tokens.secretWarning}</p>
      <div className="field">
        <label htmlFor={id}>{t.tokens.secret}</label>
        <div className="secret-row">
          <textarea id={id} readOnly rows={2} value={token.token} data-testid="token-secret" spellCheck={false} onFocus={(e) => e.currentTarget.select()} />
          <CopyButton text={token.token} testId="token-secret-copy" />
        </div>
        <p className="field-hint">
          {t.tokens.scopeHints[token.scope]}{' '}
          {token.expiresAt ? t.tokens.expiresOn(formatDateTime(token.expiresAt)) : t.tokens.neverExpires}
        </p>
      </div>
      <div className="field">
        <div className="secret-example-head">
          <span className="field-label">{t.tokens.example}</span>
          <CopyButton text={example} testId="token-example-copy" />
        </div>
        <pre className="command" data-testid="token-example">{example}</pre>
      </div>
    </div>
  );
}
