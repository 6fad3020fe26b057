import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { NotificationEvents, type Notification, type NotificationEvent, type NotificationKind } from '@qemu-manager/contract';
import { useState, type FormEvent } from 'react';
import { errorMessage } from '../../api/client';
import { AdminRequired, isForbidden, useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { EmptyState } from '../../components/EmptyState';
import { ErrorText } from '../../components/ErrorText';
import { Field } from '../../components/Field';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { useLanguage } from '../../i18n';
import { formatExactTime } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { createNotificationBody, notificationsApi, type NotificationForm } from './api';
import { words } from './words';

const KEY = ['notifications'] as const;
const emptyForm = (): NotificationForm => ({
  name: '',
  kind: 'webhook',
  url: '',
  events: ['vm.crashed', 'task.failed'],
  smtp: { host: '', port: '587', secure: false, user: '', password: '', from: '', to: '' },
});

/** Alerts (issue 14): list, add, delete, send a test, the last deliveries. Lazy-loaded (default export). */
export default function NotificationsPage() {
  useLanguage();
  const w = words();
  useTitle(w.title);
  const readOnly = useReadOnlyAccess();
  const list = useQuery({ queryKey: KEY, queryFn: ({ signal }) => notificationsApi.list(signal), enabled: !readOnly });
  const denied = readOnly || isForbidden(list.error);
  return (
    <section className="page" data-testid="notifications-page">
      <PageHeader title={w.title} intro={w.intro} />
      <AdminRequired error={list.error} readOnly={readOnly} />
      <ListStatus failed={list.isError && !denied} loading={list.isPending && !denied} error={list.error} failedText={w.loadFailed} retry={list.refetch} testId="notifications-error" />
      {!denied && <CreateForm />}
      {list.data && list.data.length === 0 && <EmptyState title={w.empty} testId="notifications-empty" />}
      {list.data?.map((n) => <EndpointCard key={n.id} n={n} />)}
    </section>
  );
}

function CreateForm() {
  const w = words();
  const qc = useQueryClient();
  const [f, setF] = useState<NotificationForm>(emptyForm);
  const create = useMutation({
    mutationFn: () => notificationsApi.create(createNotificationBody(f)),
    onSuccess: () => {
      setF(emptyForm());
      void qc.invalidateQueries({ queryKey: KEY });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const toggle = (ev: NotificationEvent) => setF({ ...f, events: f.events.includes(ev) ? f.events.filter((x) => x !== ev) : [...f.events, ev] });
  const smtp = (k: keyof NotificationForm['smtp'], v: string | boolean) => setF({ ...f, smtp: { ...f.smtp, [k]: v } });
  return (
    <form className="form card" onSubmit={submit} noValidate data-testid="notification-create">
      <h2>{w.add}</h2>
      <Field label={w.name}>
        <input value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} maxLength={100} required data-testid="notification-name" />
      </Field>
      <Field label={w.kind}>
        <select value={f.kind} onChange={(e) => setF({ ...f, kind: e.target.value as NotificationKind })} data-testid="notification-kind">
          <option value="webhook">webhook</option>
          <option value="ntfy">ntfy</option>
          <option value="smtp">smtp</option>
        </select>
      </Field>
      {f.kind !== 'smtp' ? (
        <Field label={w.url} hint={w.urlHint}>
          <input type="url" value={f.url} onChange={(e) => setF({ ...f, url: e.target.value })} required data-testid="notification-url" />
        </Field>
      ) : (
        <>
          <Field label={w.smtpHost}>
            <input value={f.smtp.host} onChange={(e) => smtp('host', e.target.value)} data-testid="notification-smtp-host" />
          </Field>
          <Field label={w.smtpPort}>
            <input inputMode="numeric" value={f.smtp.port} onChange={(e) => smtp('port', e.target.value)} />
          </Field>
          <label className="checkbox">
            <input type="checkbox" checked={f.smtp.secure} onChange={(e) => smtp('secure', e.target.checked)} /> {w.smtpSecure}
          </label>
          <Field label={w.smtpUser}>
            <input value={f.smtp.user} onChange={(e) => smtp('user', e.target.value)} autoComplete="off" />
          </Field>
          <Field label={w.smtpPassword}>
            <input type="password" value={f.smtp.password} onChange={(e) => smtp('password', e.target.value)} autoComplete="new-password" />
          </Field>
          <Field label={w.smtpFrom}>
            <input type="email" value={f.smtp.from} onChange={(e) => smtp('from', e.target.value)} />
          </Field>
          <Field label={w.smtpTo}>
            <input value={f.smtp.to} onChange={(e) => smtp('to', e.target.value)} />
          </Field>
        </>
      )}
      <fieldset>
        <legend>{w.events}</legend>
        {NotificationEvents.map((ev) => (
          <label key={ev} className="checkbox">
            <input type="checkbox" checked={f.events.includes(ev)} onChange={() => toggle(ev)} data-testid={`notification-event-${ev}`} /> {w.eventNames[ev]}
          </label>
        ))}
      </fieldset>
      {create.isError && <ErrorText error={create.error} testId="notification-create-error" />}
      <Button variant="primary" type="submit" busy={create.isPending} data-testid="notification-submit">{w.create}</Button>
    </form>
  );
}

function EndpointCard({ n }: { n: Notification }) {
  const w = words();
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const deliveries = useQuery({ queryKey: [...KEY, n.id, 'deliveries'], queryFn: ({ signal }) => notificationsApi.deliveries(n.id, signal), refetchInterval: 15_000 });
  const test = useMutation({
    mutationFn: () => notificationsApi.test(n.id),
    onSettled: () => void qc.invalidateQueries({ queryKey: [...KEY, n.id, 'deliveries'] }),
  });
  return (
    <div className="card" data-testid="notification-card" data-id={n.id}>
      <h2>{n.name} <span className="muted small">{n.kind}</span></h2>
      <p className="muted small">{n.url ?? (n.smtp ? `${n.smtp.host}:${n.smtp.port} → ${n.smtp.to.join(', ')}` : '')}</p>
      <p className="small">{n.events.map((e) => w.eventNames[e]).join(' · ')}</p>
      <div className="actions">
        <Button onClick={() => test.mutate()} busy={test.isPending} data-testid="notification-test">{w.test}</Button>
        <Button variant="danger" onClick={() => setConfirm(true)} data-testid="notification-delete">{w.remove}</Button>
      </div>
      {test.data && <p className={test.data.ok ? 'small' : 'small field-error'} data-testid="notification-test-result">{test.data.ok ? w.testOk : w.testFailed(test.data.error ?? '')}</p>}
      {test.isError && <ErrorText error={test.error} />}
      <h3 className="small">{w.deliveries}</h3>
      {deliveries.isError && <p className="field-error small">{errorMessage(deliveries.error)}</p>}
      {deliveries.data && deliveries.data.length === 0 && <p className="muted small">{w.noDeliveries}</p>}
      {deliveries.data && deliveries.data.length > 0 && (
        <ul className="small" data-testid="notification-deliveries">
          {deliveries.data.map((d, i) => (
            <li key={i}>
              <time dateTime={d.at}>{formatExactTime(d.at)}</time> · {w.eventNames[d.event]} · {w.attempt(d.attempt)} · {d.ok ? w.ok : d.final ? w.failed : w.retrying}
              {d.error ? ` (${d.error})` : ''}
            </li>
          ))}
        </ul>
      )}
      <ConfirmDialog
        open={confirm}
        title={w.remove}
        body={w.removeConfirm(n.name)}
        confirmLabel={w.remove}
        danger
        onConfirm={async () => {
          await notificationsApi.remove(n.id);
          await qc.invalidateQueries({ queryKey: KEY });
        }}
        onClose={() => setConfirm(false)}
      />
    </div>
  );
}
