import { lazy } from 'react';

/** Admin pages are rarely opened: their own chunk, loaded on first visit. */
export const LazyAuditPage = lazy(() => import('./AuditPage'));
