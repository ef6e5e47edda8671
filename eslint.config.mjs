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
    // Tests use the harness through its package, as any other user would: a deep path into
    // testkit's sources reaches past its exports and breaks when a file moves there.
    files: ['packages/*/test/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/testkit/src', '**/testkit/src/**'],
              message:
                "Import the harness from '@chat/testkit' (export it there if it is missing).",
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression[source.value=/testkit\\/src/]',
          message: "Import the harness from '@chat/testkit' (export it there if it is missing).",
        },
      ],
    },
  },
  {
    // The pages read what the registry produces through the feed's format alone
    // (@chat/protocol/dashboard-feed): @chat/web depends on neither the registry nor the cluster.
    files: ['packages/web/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@chat/cluster',
              message:
                "The web pages do not depend on the cluster: read '@chat/protocol/dashboard-feed'.",
            },
            {
              name: '@chat/registry',
              message:
                "The web pages do not depend on the registry: read '@chat/protocol/dashboard-feed'.",
            },
          ],
        },
      ],
    },
  },
  {
    // The browser apps: DOM globals instead of Node's.
    files: ['packages/web/src/chat/**/*.ts', 'packages/web/src/dashboard/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: { ...globals.node } } },
);
