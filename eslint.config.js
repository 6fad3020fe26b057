// Lint: the dependency direction of the server (routes -> services -> repos/qemu; qemu/ and store/
// never reach up into http/ or the domain folders), and a few correctness rules.
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

const upward = (...groups) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { patterns: groups.map((g) => ({ group: g, message: 'imports must point down: routes -> services -> repos/qemu/store/lib' })) }],
});

export default tseslint.config(
  { ignores: ['**/dist/**', '**/dist-types/**', 'node_modules/**', 'bench/**', 'scripts/**', '.cache/**', 'packages/web/dev/**'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      'no-debugger': 'error',
      'no-eval': 'error',
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  {
    files: ['packages/server/src/qemu/**/*.ts', 'packages/server/src/store/**/*.ts', 'packages/server/src/lib/**/*.ts'],
    rules: upward(['**/http/**', '**/vms/**', '**/disks/**', '**/isos/**', '**/events/**', '**/auth/**', '**/console/**', '**/app.js', '**/routes.js']),
  },
  {
    files: ['packages/server/src/**/service.ts', 'packages/server/src/**/power.ts', 'packages/server/src/**/repo.ts', 'packages/server/src/**/store.ts'],
    rules: upward(['**/routes.js', '**/http/**', '**/app.js']),
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
