import { lazy } from 'react';

/** The host dashboard (issue 14): its own chunk, loaded on first visit. */
export const LazyHostPage = lazy(() => import('./HostPage'));
