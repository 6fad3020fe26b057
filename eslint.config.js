// Lint: typescript-eslint's recommended type-checked rules (no floating or misused promises among
// them) over the packages, tests, bench/ and scripts/, and the dependency direction of the server
// (the layer blocks below, docs/ARCHITECTURE.md).
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

const DOMAIN = ['**/vms/**', '**/disks/**', '**/isos/**', '**/events/**', '**/auth/**', '**/audit/**', '**/console/**', '**/tasks/**', '**/backups/**', '**/host/**', '**/images/**', '**/metrics/**', '**/notifications/**', '**/networks/**'];
/** Files under packages/server/src matching `globs` may not import anything matching `banned`. */
const layer = (globs, banned) => ({
  files: globs.map((g) => `packages/server/src/${g}`),
  ignores: ['**/*.test.ts'],
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      { patterns: banned.map((g) => ({ group: [g], message: 'imports point down: app -> http -> domain -> runtime port <- qemu; lib and store at the bottom' })) },
    ],
  },
});

const LINTED = ['**/*.ts', '**/*.tsx', 'bench/**/*.mjs', 'scripts/**/*.mjs', 'test/kit/**/*.mjs'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/dist-types/**', 'node_modules/**', '.cache/**'] },
  {
    files: LINTED,
    languageOptions: {
      parser: tseslint.parser,
      // Type information for the promise rules: each package's tsconfig, the tests', and tsconfig.lint.json
      // (bench/, scripts/, the root config files).
      parserOptions: {
        project: ['packages/*/tsconfig.json', 'tsconfig.tests.json', 'tsconfig.lint.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      'no-debugger': 'error',
      'no-eval': 'error',
    },
  },
  {
    // Sources are typed by their own package's tsconfig (the tests' one is looser: no unchecked index access).
    files: ['packages/*/src/**/*.ts', 'packages/*/src/**/*.tsx'],
    ignores: ['**/*.test.ts', '**/*.test.tsx'],
    languageOptions: { parserOptions: { project: ['packages/*/tsconfig.json'], tsconfigRootDir: import.meta.dirname } },
  },
  // typescript-eslint's recommended type-checked rules everywhere (no-floating-promises and
  // no-misused-promises among them).
  ...tseslint.configs.recommendedTypeChecked.map((c) => ({ ...c, files: LINTED })),
  {
    files: LINTED,
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // Tests, the benchmark and scripts handle JSON from a server under test (and bench/ and scripts/
    // are plain JavaScript): values without a static type are their normal case, not a hole.
    files: ['**/*.test.ts', '**/*.test.tsx', 'test/**', 'e2e/**', 'bench/**', 'scripts/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Fakes and callbacks for APIs that take a promise are async without awaiting; expect(obj.fn) is no call.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Fastify plugins and route handlers are async by contract (a sync handler must call reply.send).
    files: ['packages/server/src/http/**/*.ts', 'packages/server/src/app.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  // The server's layers (docs/ARCHITECTURE.md): lib/ and store/ at the bottom; runtime/ (the
  // hypervisor port) above them; qemu/ (its adapter) implements the port; the domain folders use
  // the port, never qemu/; http/ (the HTTP core, then its routes) sits on top; app.ts composes.
  // Tests may reach across (e.g. to look a status up in the error table).
  layer(['lib/**', 'store/**'], [...DOMAIN, '**/http/**', '**/qemu/**', '**/runtime/**', '**/app.js', '**/config.js']),
  layer(['runtime/**'], [...DOMAIN, '**/http/**', '**/qemu/**', '**/app.js']),
  layer(['qemu/**'], [...DOMAIN, '**/http/**', '**/app.js']),
  // The host network adapter (issue 11) implements the network port: runtime/ and lib/ only.
  layer(['hostnet/**'], [...DOMAIN, '**/http/**', '**/qemu/**', '**/store/**', '**/app.js', '**/config.js']),
  // The domain speaks to the hypervisor through runtime/port.ts only, and knows no route.
  layer(DOMAIN.map((g) => `${g.slice(3, -3)}/**`), ['**/qemu/**', '**/http/routes/**', '**/http/server.js', '**/http/guard.js', '**/app.js']),
  // Services, repos and stores, auth/ and audit/ know nothing of HTTP (only the console proxy
  // writes its refusals with the error table).
  layer(['**/service.ts', '**/power.ts', '**/repo.ts', '**/store.ts', 'auth/**', 'audit/**'], ['**/qemu/**', '**/http/**', '**/app.js']),
  // The HTTP core (server, guard, errors, console upgrade, static UI) knows no domain folder; what it
  // shares with auth/ and audit/ (cookies, the Principal) lives in lib/request.ts.
  layer(['http/*.ts'], [...DOMAIN, '**/qemu/**', '**/runtime/**', '**/routes/**', '**/app.js']),
  // Routes call services, never an adapter.
  layer(['http/routes/**'], ['**/qemu/**', '**/runtime/**', '**/app.js']),
  {
    // The CLI talks to the server over HTTP only (its admin commands run the server's built cli.js).
    files: ['packages/cli/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/server/**', '@qemu-manager/server'], message: 'the CLI talks to the server over HTTP only' }] },
      ],
    },
  },
  {
    files: ['packages/web/src/**/*.ts', 'packages/web/src/**/*.tsx'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/server/**', '@qemu-manager/server'], message: 'the web UI talks to the server over HTTP only' }] },
      ],
    },
  },
);
