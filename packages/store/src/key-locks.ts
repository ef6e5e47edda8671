/**
 * Per-key locks for the two steps, as transaction-scoped advisory locks: a chat step holds its
 * chats' locks, a user step its users', until commit. A row lock (SELECT ... FOR UPDATE) would
 * do the same but writes the row (and a WAL record) for every key of every batch; the profile
 * of issue 14 showed those statements among the costliest of the send path.
 *
 * Every holder takes its keys in the same order (by lock key, then id), so no two statements
 * wait for each other in a cycle. Two ids that hash alike share a lock: harmless, the holder
 * takes it once more (advisory locks stack within a transaction).
 */

import { sql } from 'kysely';
import type { Transaction } from 'kysely';
import type { Database } from './schema';

/** The first half of the two-int advisory lock key: which kind of key. */
export const LOCK_SPACE = { chat: 0x63680001, user: 0x63680002 } as const;

/**
 * A PL/pgSQL statement that locks every id of `idsExpr` (a text[] expression) in `space`, in
 * the one order every holder uses (a volatile call in the target list runs after the sort).
 */
export function lockKeysSql(space: keyof typeof LOCK_SPACE, idsExpr: string): string {
  return `perform pg_advisory_xact_lock(${LOCK_SPACE[space]}, k.h)
    from (select distinct hashtext(u) as h from unnest(${idsExpr}) as t(u)) k
    order by k.h`;
}

/** Locks `ids` of `space` in the same order, shared (readers) or exclusive. */
export async function lockKeys(
  tx: Transaction<Database>,
  space: keyof typeof LOCK_SPACE,
  ids: readonly string[],
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const fn = sql.raw(mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock');
  await sql`
    select ${fn}(${LOCK_SPACE[space]}::int4, k.h)
    from (select distinct hashtext(u) as h from unnest(${ids}::text[]) as t(u)) k
    order by k.h`.execute(tx);
}
