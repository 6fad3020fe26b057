import { lazy } from 'react';

/** Alerts (issue 14): an admin page, its own chunk. */
export const LazyNotificationsPage = lazy(() => import('./NotificationsPage'));
