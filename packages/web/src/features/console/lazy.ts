import { lazy } from 'react';

/** The console with noVNC, split into its own chunk: it loads only when a console opens. */
export const LazyConsoleView = lazy(() => import('./ConsoleView'));
