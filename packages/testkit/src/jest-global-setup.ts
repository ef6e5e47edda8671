/**
 * Jest globalSetup of the `integration` project: one shared Postgres server for the whole run.
 * Its superuser URL goes to CHAT_TEST_PG_URL (inherited by the workers); test files make their
 * own database on it with createTestDatabase(). When CHAT_TEST_PG_URL is already set, that
 * server is used and nothing is started.
 */
import { startPostgres } from './postgres';
import type { PostgresHandle } from './postgres';

/** Where globalSetup leaves the handle for globalTeardown (same process). */
export const GLOBAL_PG_KEY = '__chatTestPostgres';

export default async function globalSetup(): Promise<void> {
  if (process.env['CHAT_TEST_PG_URL']) return;
  const handle: PostgresHandle = await startPostgres();
  (globalThis as Record<string, unknown>)[GLOBAL_PG_KEY] = handle;
  process.env['CHAT_TEST_PG_URL'] = handle.url;
}
