import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { authApi } from '../api/endpoints';
import { liveStore } from '../api/events';
import { qk, useAuthStatus, useHealth } from '../api/queries';
import { ErrorText } from './ErrorText';
import { formatMiB } from '../lib/format';
import { Link, paths } from '../router';
import { TasksButton, TasksPanel } from '../features/tasks/TasksPanel';
import { LANGS, setLanguage, t, useLanguage, type Lang } from '../i18n';
import { words as notificationWords } from '../features/notifications/words'; // alerts (issue 14)

const NAV = [
  { to: paths.vms, label: () => t.app.nav.vms, testId: 'nav-vms', match: (p: string) => p === '/' || p.startsWith('/vms') },
  { to: paths.disks, label: () => t.app.nav.disks, testId: 'nav-disks', match: (p: string) => p.startsWith('/disks') },
  { to: paths.isos, label: () => t.app.nav.isos, testId: 'nav-isos', match: (p: string) => p.startsWith('/isos') },
  { to: paths.images, label: () => t.app.nav.images, testId: 'nav-images', match: (p: string) => p.startsWith('/images') },
  { to: paths.networks, label: () => t.networks.nav, testId: 'nav-networks', match: (p: string) => p.startsWith('/networks') }, // networks (issue 11)
  { to: paths.backups, label: () => t.app.nav.backups, testId: 'nav-backups', match: (p: string) => p.startsWith('/backups') },
  { to: paths.tokens, label: () => t.app.nav.tokens, testId: 'nav-tokens', match: (p: string) => p.startsWith('/tokens') },
  { to: paths.audit, label: () => t.app.nav.audit, testId: 'nav-audit', match: (p: string) => p.startsWith('/audit') },
  { to: paths.host, label: () => t.host.nav, testId: 'nav-host', match: (p: string) => p.startsWith('/host') }, // the host dashboard (issue 14)
  { to: paths.notifications, label: () => notificationWords().nav, testId: 'nav-notifications', match: (p: string) => p.startsWith('/notifications') }, // alerts (issue 14)
];

export function LiveIndicator() {
  const state = useSyncExternalStore(liveStore.subscribe, liveStore.get);
  const live = state === 'live';
  return (
    <span
      className={`live ${live ? 'is-live' : 'is-off'}`}
      title={live ? t.app.liveTitle : t.app.reconnectingTitle}
      data-testid="live-indicator"
      data-state={state}
    >
      <span className="dot" aria-hidden="true" />
      {live ? t.app.live : state === 'connecting' ? t.app.connecting : t.app.reconnecting}
    </span>
  );
}

function HostSummary() {
  const { data } = useHealth();
  if (!data?.qemu || !data.host) return null;
  return (
    <span className="host-summary" title={data.qemu.accelReason} data-testid="host-summary">
      {t.app.hostSummary(data.qemu.accel, data.host.cpus, formatMiB(data.host.memoryMiB))}
    </span>
  );
}

/** The UI language switch: the new words appear at once, and the choice is remembered. */
function LanguageSwitch() {
  const lang = useLanguage();
  return (
    <label className="lang-switch">
      <select
        value={lang}
        onChange={(e) => setLanguage(e.target.value as Lang)}
        aria-label={t.app.language}
        title={t.app.language}
        data-testid="language-switch"
      >
        {LANGS.map((l) => (
          <option key={l} value={l} lang={l}>
            {t.app.languages[l]}
          </option>
        ))}
      </select>
    </label>
  );
}

function LogoutButton() {
  const qc = useQueryClient();
  const auth = useAuthStatus();
  const [error, setError] = useState<unknown>(null);
  // Only a browser session can log out (actor "session:admin"); loopback use has nothing to end.
  if (!auth.data?.actor?.startsWith('session')) return null;
  const logout = async () => {
    try {
      await authApi.logout();
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== qk.auth[0] });
      await qc.invalidateQueries({ queryKey: qk.auth });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => void logout()} data-testid="logout">
        {t.auth.logout}
      </button>
      <ErrorText error={error} onDismiss={() => setError(null)} />
    </>
  );
}

export function Layout({ pathname, children }: { pathname: string; children: ReactNode }) {
  const nav = useRef<HTMLElement>(null);
  const [tasksOpen, setTasksOpen] = useState(false);
  const closeTasks = useCallback(() => setTasksOpen(false), []);
  // On a phone the nav is a scrolling row: keep the current page's entry in view.
  useEffect(() => {
    nav.current?.querySelector('.is-active')?.scrollIntoView?.({ block: 'nearest', inline: 'nearest' });
  }, [pathname]);
  return (
    <div className="app">
      <header className="topbar">
        <Link to={paths.vms} className="brand">
          <svg viewBox="0 0 16 16" width="20" height="20" aria-hidden="true">
            <rect x="1" y="2" width="14" height="10" rx="2" fill="currentColor" />
            <rect x="5" y="13" width="6" height="1.5" rx=".75" fill="currentColor" />
          </svg>
          <span>{t.app.name}</span>
        </Link>
        <nav className="nav" aria-label={t.app.navLabel} ref={nav}>
          {NAV.map((n) => (
            <Link key={n.to} to={n.to} data-testid={n.testId} className={n.match(pathname) ? 'is-active' : ''} aria-current={n.match(pathname) ? 'page' : undefined}>
              {n.label()}
            </Link>
          ))}
        </nav>
        <div className="topbar-end">
          <HostSummary />
          <TasksButton open={tasksOpen} onToggle={() => setTasksOpen((o) => !o)} />
          <LiveIndicator />
          <LanguageSwitch />
          <LogoutButton />
        </div>
      </header>
      <main className="main">{children}</main>
      <TasksPanel open={tasksOpen} onClose={closeTasks} />
    </div>
  );
}
