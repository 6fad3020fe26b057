// @ts-check
// The one test kit shared by the integration tests (test/integration/harness.ts), the browser
// tests (e2e/server.ts) and the benchmark (bench/). Plain ESM with JSDoc types, so that the bench
// runs it with plain `node` and the TypeScript tests get its types (allowJs in tsconfig.tests.json).
export { login, nowMs, request, stopAllVms } from './api.mjs';
export { freePort, holdPort, portFree } from './ports.mjs';
export { alive, killQemusOf, pidsWithCmdline, qemuPidsOf, stopQemusOf } from './procs.mjs';
export { cleanupDataDir, makeDataDir, repoRoot, SERVER_MAIN, serialLog, serialLogPath, ServerProcess, startServer } from './server.mjs';
export { poll, sleep, waitFor } from './wait.mjs';
