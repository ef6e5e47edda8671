/**
 * Jest globalSetup of the `citus` project: one Citus cluster (a coordinator and two workers)
 * for the whole run; its ports go to CHAT_TEST_CITUS (inherited by the workers), and test files
 * make their own database on it with createCitusTestDatabase().
 */
import { CITUS_ENV, startCitus, topologyOf } from './citus';
import type { CitusHandle } from './citus';

/** Where globalSetup leaves the handle for globalTeardown (same process). */
export const GLOBAL_CITUS_KEY = '__chatTestCitus';

export default async function globalSetup(): Promise<void> {
  if (process.env[CITUS_ENV]) return;
  const handle: CitusHandle = await startCitus({ workers: 2 });
  (globalThis as Record<string, unknown>)[GLOBAL_CITUS_KEY] = handle;
  process.env[CITUS_ENV] = JSON.stringify(topologyOf(handle));
}
