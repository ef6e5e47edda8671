/** Two projects: fast pure unit tests, and integration tests against real Postgres and node processes. */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const moduleNameMapper = { '^@chat/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts' };

module.exports = {
  // Cluster tests start real processes; their hooks need more than jest's default 5 s.
  testTimeout: 120000,
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/packages/*/test/**/*.unit.test.ts'],
      transform,
      moduleNameMapper,
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/packages/*/test/**/*.int.test.ts'],
      transform,
      moduleNameMapper,
      globalSetup: '<rootDir>/packages/testkit/src/jest-global-setup.ts',
      globalTeardown: '<rootDir>/packages/testkit/src/jest-global-teardown.ts',
    },
  ],
};
