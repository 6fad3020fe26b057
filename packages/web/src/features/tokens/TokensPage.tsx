import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { ApiToken } from '@qemu-manager/contract';
import { tokensApi } from '../../api/endpoints';
import { qk, useTokens } from '../../api/queries';
import { AdminRequired, isForbidden, useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { EmptyState } from '../../components/EmptyState';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { formatDateTime, relativeTime } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { CreateTokenDialog } from './CreateTokenDialog';
import { sortTokens, tokenState } from './tokenRules';

/** The page is lazy-loaded (see ./lazy.ts), hence the default export. */
export default function TokensPage() {
  useTitle(t.tokens.title);
  const readOnly = useReadOnlyAccess();
  const tokens = useTokens(!readOnly);
  const now = useNow(30_000);
  const [creating, setCreating] = useState(false);
  const denied = readOnly || isForbidden(tokens.error);
  const sorted = tokens.data ? sortTokens(tokens.data, now) : [];
  const openCreate = () => setCreating(true);
  return (
    <section className="page" data-testid="tokens-page">
      <PageHeader
        title={t.tokens.title}
        intro={t.tokens.intro}
        action={!denied && <Button variant="primary" onClick={openCreate} data-testid="create-token-open">{t.tokens.create}</Button>}
      />
      <AdminRequired error={tokens.error} readOnly={readOnly} />
      <ListStatus failed={tokens.isError && !denied} loading={tokens.isPending && !denied} error={tokens.error} failedText={t.tokens.loadFailed} retry={tokens.refetch} testId="token-list-error" />
      {tokens.data?.length === 0 && <EmptyState title={t.tokens.empty} hint={t.tokens.emptyHint} testId="token-list-empty" />}
      {sorted.length > 0 && (
        <div className="table token-table" role="table" aria-label={t.tokens.title}>
          <div className="table-head" role="row">
            {(['name', 'scope', 'created', 'expires', 'lastUsed', 'state'] as const).map((c) => (
              <span key={c} role="columnheader">{t.tokens.columns[c]}</span>
            ))}
            <span role="columnheader" className="sr-only">{t.tokens.columns.actions}</span>
          </div>
          {sorted.map((tok) => <TokenRow key={tok.id} token={tok} now={now} />)}
        </div>
      )}
      <CreateTokenDialog open={creating} onClose={() => setCreating(false)} />
    </section>
  );
}

function TokenRow({ token, now }: { token: ApiToken; now: number }) {
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const state = tokenState(token, now);
  const words = t.time;
  return (
    <div className={`table-row token-row ${state === 'active' ? '' : 'is-inactive'}`} role="row" data-testid={`token-row-${token.name}`} data-state={state}>
      <span role="cell" className="cell-name"><span className="vm-name" title={token.name}>{token.name}</span></span>
      <span role="cell" data-label={t.tokens.columns.scope} title={t.tokens.scopeHints[token.scope]} data-testid="token-scope">
        {t.tokens.scopes[token.scope]}
      </span>
      <span role="cell" data-label={t.tokens.columns.created} className="token-date">{formatDateTime(token.createdAt)}</span>
      <span role="cell" data-label={t.tokens.columns.expires} className="token-date" title={token.expiresAt ? relativeTime(token.expiresAt, now, words) : undefined}>
        {token.expiresAt ? formatDateTime(token.expiresAt) : <span className="muted">{t.tokens.never}</span>}
      </span>
      <span role="cell" data-label={t.tokens.columns.lastUsed} title={token.lastUsedAt ? formatDateTime(token.lastUsedAt) : undefined}>
        {token.lastUsedAt ? relativeTime(token.lastUsedAt, now, words) : <span className="muted">{t.tokens.neverUsed}</span>}
      </span>
      <span role="cell" data-label={t.tokens.columns.state} className="cell-status">
        <span className={`badge badge-token-${state}`} data-testid="token-state" data-state={state}>
          <span className="dot" aria-hidden="true" />
          {t.tokens.states[state]}
        </span>
      </span>
      <span role="cell" className="cell-actions">
        {state === 'active' && (
          <Button size="sm" variant="ghost" onClick={() => setConfirm(true)} data-testid="token-revoke">{t.tokens.revoke}</Button>
        )}
      </span>
      <ConfirmDialog
        open={confirm}
        title={t.tokens.revokeTitle(token.name)}
        body={<p>{t.tokens.revokeBody}</p>}
        confirmLabel={t.tokens.revokeConfirm}
        danger
        testId="revoke-token-dialog"
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          await tokensApi.revoke(token.id);
          const revokedAt = new Date().toISOString();
          qc.setQueryData<ApiToken[]>(qk.tokens, (old) => old?.map((x) => (x.id === token.id ? { ...x, revokedAt } : x)));
          void qc.invalidateQueries({ queryKey: qk.tokens });
          void qc.invalidateQueries({ queryKey: qk.audit });
        }}
      />
    </div>
  );
}
