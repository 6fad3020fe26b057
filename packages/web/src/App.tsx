import { Suspense, useEffect, type ReactNode } from 'react';
import { MutationCache, QueryCache, QueryClient, QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import { ApiError } from './api/client';
import { connectEvents } from './api/events';
import { qk, useAuthStatus } from './api/queries';
import { ErrorText } from './components/ErrorText';
import { LazyAuditPage } from './features/audit/lazy';
import { LazyNotificationsPage } from './features/notifications/lazy'; // alerts (issue 14)
import { LazyNetworksPage } from './features/networks/lazy'; // networks (issue 11)
import { LazyHostPage } from './features/host/lazy'; // the host dashboard (issue 14)
import { LoginPage } from './features/auth/LoginPage';
import { Layout } from './components/Layout';
import { ConsolePage } from './features/console/ConsolePage';
import { BackupsPage } from './features/backups/BackupsPage';
import { DisksPage } from './features/disks/DisksPage';
import { IsosPage } from './features/isos/IsosPage';
import { ImagesPage } from './features/images/ImagesPage';
import { LazyTokensPage } from './features/tokens/lazy';
import { VmDetailPage } from './features/vms/VmDetailPage';
import { VmListPage } from './features/vms/VmListPage';
import { t, useLanguage } from './i18n';
import { Link, matchPath, paths, usePathname } from './router';

export function createQueryClient(): QueryClient {
  // A 401 anywhere means the session ended: re-check access, which shows the login page.
  const on401 = (err: unknown) => {
    if (err instanceof ApiError && err.status === 401) void client.invalidateQueries({ queryKey: qk.auth });
  };
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({ onError: on401 }),
    mutationCache: new MutationCache({ onError: on401 }),
    defaultOptions: {
      // Server events keep the cache fresh, so there is no polling; a focus refetch covers sleeps.
      queries: { staleTime: 15_000, retry: 1, refetchOnWindowFocus: true },
      mutations: { retry: 0 },
    },
  });
  return client;
}

function Routes() {
  const pathname = usePathname();
  let params: Record<string, string> | null;
  if ((params = matchPath('/vms/:id/console', pathname))) return <ConsolePage id={params.id!} />;

  let page;
  if (matchPath('/', pathname)) page = <VmListPage />;
  else if ((params = matchPath('/vms/:id', pathname))) page = <VmDetailPage key={params.id} id={params.id!} />;
  else if (matchPath('/disks', pathname)) page = <DisksPage />;
  else if (matchPath('/isos', pathname)) page = <IsosPage />;
  else if (matchPath('/images', pathname)) page = <ImagesPage />;
  else if (matchPath('/backups', pathname)) page = <BackupsPage />;
  else if (matchPath('/tokens', pathname)) page = <LazyTokensPage />;
  else if (matchPath('/audit', pathname)) page = <LazyAuditPage />;
  else if (matchPath('/notifications', pathname)) page = <LazyNotificationsPage />; // alerts (issue 14)
  else if (matchPath('/networks', pathname)) page = <LazyNetworksPage />; // networks (issue 11)
  else if (matchPath('/host', pathname)) page = <LazyHostPage />; // the host dashboard (issue 14)
  else
    page = (
      <section className="page" data-testid="not-found">
        <h1>{t.app.notFound}</h1>
        <p><Link to={paths.vms}>{t.app.backToList}</Link></p>
      </section>
    );
  return (
    <Layout pathname={pathname}>
      <Suspense fallback={<p className="page muted">{t.app.loading}</p>}>{page}</Suspense>
    </Layout>
  );
}

/** Live updates run only while the API is usable (after login when one is needed). */
function LiveUpdates({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  useEffect(() => connectEvents(client), [client]);
  return children;
}

function AccessGate() {
  const auth = useAuthStatus();
  // A language switch renders the page anew in the new words (no reload; the data cache stays).
  const lang = useLanguage();
  if (auth.isPending) return <p className="muted center gate">{t.auth.checking}</p>;
  if (auth.isError && !auth.data) {
    return (
      <section className="page gate">
        <ErrorText error={`${t.auth.statusFailed} ${(auth.error).message}`} testId="auth-status-error">
          <button type="button" className="link-button" onClick={() => void auth.refetch()}>{t.common.retry}</button>
        </ErrorText>
      </section>
    );
  }
  if (auth.data.authRequired && !auth.data.authenticated) return <LoginPage />;
  return (
    <LiveUpdates>
      <Routes key={lang} />
    </LiveUpdates>
  );
}

export function App({ client }: { client: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <AccessGate />
    </QueryClientProvider>
  );
}
