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
      // The store suite, the protocol conformance suite (on three nodes) and cluster tests run
      // here too, on Citus (CHAT_TEST_ENGINE=citus): the store's databases and the harnesses'
      // are made on the Citus cluster. Not the outage test: it stops a server of its own, plain
      // PostgreSQL (the shared Citus servers stay up for the other files).
      testMatch: [
        '<rootDir>/packages/*/test/**/*.citus.test.ts',
        '<rootDir>/packages/store/test/**/*.int.test.ts',
        '<rootDir>/packages/node/test/conformance.int.test.ts',
        // Attachment retention: fetches recorded on user shards, released per chat shard.
        '<rootDir>/packages/node/test/media-retention.int.test.ts',
        // A three-node cluster on Citus: delivery across nodes, a node SIGKILLed under
        // traffic, a node killed between the chat step and the user step.
        '<rootDir>/packages/node/test/cluster/routing.int.test.ts',
        '<rootDir>/packages/node/test/cluster/failover.int.test.ts',
        '<rootDir>/packages/node/test/cluster/fanout-sweeper.int.test.ts',
        // Faults (issue 20) on Citus: a 29-day backlog written on the chat's and the user's
        // shards, a node's clock 5 s ahead. The database faults have a Citus file of their own
        // (postgres-faults.citus: its own cluster, as they stop servers). The corrupting RPC link
        // and etcd's quorum involve no database: on Citus only with CHAT_TEST_ALL_FAULTS_ON_CITUS=1
        // (the suite's time budget).
        '<rootDir>/packages/node/test/old-backlog.int.test.ts',
        '<rootDir>/packages/node/test/clock-skew.int.test.ts',
        ...(process.env.CHAT_TEST_ALL_FAULTS_ON_CITUS === '1'
          ? [
              '<rootDir>/packages/node/test/cluster/corrupt-link.int.test.ts',
              '<rootDir>/packages/node/test/cluster/etcd-quorum.int.test.ts',
            ]
          : []),
      ],
      testPathIgnorePatterns: [
        '/node_modules/',
        '<rootDir>/packages/store/test/outage.int.test.ts',
      ],
      transform,
      moduleNameMapper,
      setupFiles: ['<rootDir>/packages/testkit/src/jest-citus-env.ts'],
      globalSetup: '<rootDir>/packages/testkit/src/jest-citus-setup.ts',
      globalTeardown: '<rootDir>/packages/testkit/src/jest-citus-teardown.ts',
    },
  ],
};
