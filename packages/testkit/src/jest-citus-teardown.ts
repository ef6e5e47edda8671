/** Jest globalTeardown of the `citus` project: stops the cluster globalSetup started. */
import type { CitusHandle } from './citus';
import { GLOBAL_CITUS_KEY } from './jest-citus-setup';

export default async function globalTeardown(): Promise<void> {
  const handle = (globalThis as Record<string, unknown>)[GLOBAL_CITUS_KEY] as
    CitusHandle | undefined;
  await handle?.close();
}
