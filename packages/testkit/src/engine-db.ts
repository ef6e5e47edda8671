/**
 * A test database on the run's storage engine: plain PostgreSQL (the shared embedded server),
 * or, in the jest `citus` project (CHAT_TEST_ENGINE=citus, jest-citus-env.ts), a database on
 * the run's Citus cluster. The harnesses that start nodes make their databases here, so the
 * same test runs on either engine.
 */
import { createCitusTestDatabase } from './citus';
import { createTestDatabase } from './db';
import type { TestDatabase } from './db';

/** Whether this test run puts its databases on Citus. */
export function testEngineIsCitus(): boolean {
  return process.env['CHAT_TEST_ENGINE'] === 'citus';
}

/** `adminUrl` names a plain server to use instead of the shared one (not used on Citus). */
export function createEngineTestDatabase(prefix: string, adminUrl?: string): Promise<TestDatabase> {
  return testEngineIsCitus()
    ? createCitusTestDatabase(prefix)
    : createTestDatabase(prefix, adminUrl);
}
