/** Three projects: fast pure unit tests, integration tests against real Postgres and node processes, and the storage tier on Citus. */
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
    {
      // The storage tier on Citus: a coordinator and two workers of PostgreSQL 15 with the
      // citus extension (scripts/ensure-citus.sh builds it when missing).
      displayName: 'citus',
      // The protocol conformance suite runs here too, against a node on Citus
      // (CHAT_TEST_ENGINE=citus). CHAT_CITUS_STORE_SUITE=1 adds the store suite: work in
      // progress, see docs/durable-path.md "On Citus" for what does not pass yet.
      testMatch: [
        '<rootDir>/packages/*/test/**/*.citus.test.ts',
        '<rootDir>/packages/node/test/conformance.int.test.ts',
        ...(process.env.CHAT_CITUS_STORE_SUITE === '1'
          ? ['<rootDir>/packages/store/test/**/*.int.test.ts']
          : []),
      ],
      transform,
      moduleNameMapper,
      setupFiles: ['<rootDir>/packages/testkit/src/jest-citus-env.ts'],
      globalSetup: '<rootDir>/packages/testkit/src/jest-citus-setup.ts',
      globalTeardown: '<rootDir>/packages/testkit/src/jest-citus-teardown.ts',
    },
  ],
};
