import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // Tests, the harness and command-line entry points may print.
    files: [
      'packages/*/test/**/*.ts',
      'packages/testkit/**/*.ts',
      'packages/*/src/main.ts',
      'packages/*/src/cli.ts',
      'packages/bench/**/*.ts',
      'scripts/**',
    ],
    rules: { 'no-console': 'off' },
  },
  {
    // The browser apps: DOM globals instead of Node's.
    files: ['packages/web/src/chat/**/*.ts', 'packages/web/src/dashboard/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: { ...globals.node } } },
);
