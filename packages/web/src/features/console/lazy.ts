import { lazy } from 'react';

/** The console with noVNC, split into its own chunk: it loads only when a console opens. */
export const LazyConsoleView = lazy(() => import('./ConsoleView'));

/** Serial console (issue 14): xterm.js in its own chunk, loaded when the Serial tab opens. */
export const LazySerialConsole = lazy(() => import('./SerialConsole'));
