import { Client } from 'pg';

/**
 * Holds transaction-scoped advisory locks on `ids` of one lock space (the store's LOCK_SPACE
 * value) from a connection of its own, so that the steps wanting them wait, until released.
 *
 * `keyTable` (on Citus: 'users' or 'chats'): the locks are taken by a query on the keys' rows,
 * as the store takes them there, so that they land on the worker holding the keys' shard (a
 * lock taken on the coordinator would hold off nothing); the rows must exist.
 */
export async function holdKeyLocks(
  databaseUrl: string,
  space: number,
  ids: readonly string[],
  keyTable?: 'users' | 'chats',
): Promise<() => Promise<void>> {
  const client = new Client({ connectionString: databaseUrl });
  client.on('error', () => undefined); // a server going away surfaces through the queries
  await client.connect();
  await client.query('begin');
  const { rowCount } = await client.query(
    keyTable === undefined
      ? 'select pg_advisory_xact_lock($1, hashtext(u)) from unnest($2::text[]) as t(u)'
      : `select pg_advisory_xact_lock($1, hashtext(t.id)) from ${keyTable} t where t.id = any($2)`,
    [space, ids],
  );
  if (rowCount !== new Set(ids).size) throw new Error(`locked ${rowCount} of ${ids.length} keys`);
  return async () => {
    await client.query('rollback').catch(() => undefined);
    await client.end();
  };
}
