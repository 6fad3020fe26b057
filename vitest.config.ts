import { defineConfig } from 'vitest/config';

// Four projects: fast unit tests beside the sources, in-process server tests (test/inprocess), integration tests against a real server
// process and real QEMU, and browser tests (Playwright driving Debian's Chromium). They run one
// group after the other (groupOrder), and the QEMU ones one file at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['packages/*/src/**/*.test.ts', 'packages/*/src/**/*.test.tsx'],
          environment: 'node',
          // scrypt and real child processes: a shared, busy machine can take seconds for what is quick alone.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          // The whole server in-process (Fastify inject) over a fake hypervisor: every route and
          // error code in seconds.
          name: 'inprocess',
          sequence: { groupOrder: 0 },
          include: ['test/inprocess/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/host-state.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'e2e',
          sequence: { groupOrder: 2 },
          include: ['e2e/**/*.test.ts'],
          globalSetup: ['test/host-state.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
