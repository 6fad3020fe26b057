import { lazy } from 'react';

/** Networks (issue 11): its own chunk, loaded on first visit. */
export const LazyNetworksPage = lazy(() => import('./NetworksPage'));
