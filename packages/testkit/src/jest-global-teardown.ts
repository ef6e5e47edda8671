/** Jest globalTeardown of the `integration` project: stops the server globalSetup started. */
import { GLOBAL_PG_KEY } from './jest-global-setup';
import type { PostgresHandle } from './postgres';

export default async function globalTeardown(): Promise<void> {
  const scope = globalThis as Record<string, unknown>;
  const handle = scope[GLOBAL_PG_KEY] as PostgresHandle | undefined;
  if (!handle) return;
  delete scope[GLOBAL_PG_KEY];
  delete process.env['CHAT_TEST_PG_URL'];
  await handle.close();
}
