// Lint: the dependency direction of the server (routes -> services -> repos/qemu; qemu/, store/ and
// lib/ never reach up into http/ or the domain folders; http/ and auth/ or audit/ never import each
// other), no floating or misused promises (with type information, over bench/ and scripts/ too),
// and a few correctness rules.
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

const upward = (...groups) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { patterns: groups.map((g) => ({ group: g, message: 'imports must point down: routes -> services -> repos/qemu/store/lib' })) }],
});

export default tseslint.config(
  { ignores: ['**/dist/**', '**/dist-types/**', 'node_modules/**', '.cache/**'] },
  {
    files: ['**/*.ts', '**/*.tsx', 'bench/**/*.mjs', 'scripts/**/*.mjs', 'test/kit/**/*.mjs'],
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
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    files: ['packages/server/src/qemu/**/*.ts', 'packages/server/src/store/**/*.ts', 'packages/server/src/lib/**/*.ts'],
    rules: upward(['**/http/**', '**/vms/**', '**/disks/**', '**/isos/**', '**/events/**', '**/auth/**', '**/audit/**', '**/console/**', '**/system/**', '**/app.js', '**/routes.js']),
  },
  {
    files: ['packages/server/src/**/service.ts', 'packages/server/src/**/power.ts', 'packages/server/src/**/repo.ts', 'packages/server/src/**/store.ts'],
    rules: upward(['**/routes.js', '**/http/**', '**/app.js']),
  },
  {
    // The HTTP layer (guard, limits, errors) knows no domain folder; what it shares with auth/ and
    // audit/ (cookies, the Principal) lives in lib/request.ts.
    files: ['packages/server/src/http/**/*.ts'],
    rules: upward(['**/vms/**', '**/disks/**', '**/isos/**', '**/events/**', '**/auth/**', '**/audit/**', '**/console/**', '**/system/**', '**/app.js', '**/routes.js']),
  },
  {
    // auth/ and audit/ never import http/ (nor another folder's routes); they come after the
    // service/store block above so that these patterns apply to their stores too.
    files: ['packages/server/src/auth/**/*.ts', 'packages/server/src/audit/**/*.ts'],
    rules: upward(['**/http/**', '**/routes.js', '**/app.js']),
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
