import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { authApi } from '../../api/endpoints';
import { Button } from '../../components/Button';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';

/** Shown instead of the app when the server requires a login (it is not on loopback). */
export function LoginPage({ expired = false }: { expired?: boolean }) {
  const qc = useQueryClient();
  const [password, setPassword] = useState('');
  useTitle(t.auth.title);
  const login = useMutation({
    mutationFn: () => authApi.login(password),
    onSuccess: async () => {
      setPassword('');
      await qc.invalidateQueries();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (password) login.mutate();
  };
  return (
    <main className="login" data-testid="login-page">
      <form className="card login-card form" onSubmit={submit}>
        <div className="brand">
          <svg viewBox="0 0 16 16" width="22" height="22" aria-hidden="true">
            <rect x="1" y="2" width="14" height="10" rx="2" fill="currentColor" />
            <rect x="5" y="13" width="6" height="1.5" rx=".75" fill="currentColor" />
          </svg>
          <span>{t.app.name}</span>
        </div>
        <p className="muted">{expired ? t.auth.expired : t.auth.intro}</p>
        <Field label={t.auth.password}>
          <input
            type="password"
            autoComplete="current-password"
            autoFocus
            value={password}
            data-testid="login-password"
            onChange={(e) => {
              setPassword(e.target.value);
              login.reset();
            }}
          />
        </Field>
        <ErrorText error={login.error} testId="login-error" />
        <Button type="submit" variant="primary" busy={login.isPending} disabled={!password} data-testid="login-submit">
          {t.auth.submit}
        </Button>
      </form>
    </main>
  );
}
