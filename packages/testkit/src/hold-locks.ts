import { Client } from 'pg';

/**
 * Holds transaction-scoped advisory locks on `ids` of one lock space (the store's LOCK_SPACE
 * value) from a connection of its own, so that the steps wanting them wait, until released.
 */
export async function holdKeyLocks(
  databaseUrl: string,
  space: number,
  ids: readonly string[],
): Promise<() => Promise<void>> {
  const client = new Client({ connectionString: databaseUrl });
  client.on('error', () => undefined); // a server going away surfaces through the queries
  await client.connect();
  await client.query('begin');
  await client.query(
    'select pg_advisory_xact_lock($1, hashtext(u)) from unnest($2::text[]) as t(u)',
    [space, ids],
  );
  return async () => {
    await client.query('rollback').catch(() => undefined);
    await client.end();
  };
}
