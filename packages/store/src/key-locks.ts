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

/** The table whose rows are the keys of each space. */
const KEY_TABLE = { chat: 'chats', user: 'users' } as const;

/**
 * A PL/pgSQL statement that locks every id of `idsExpr` (a text[] expression) in `space`, in
 * the one order every holder uses (a volatile call in the target list runs after the sort).
 *
 * `onRows` (Citus): the locks are taken by a query on the keys' rows (ids without a row get no
 * lock), so that Citus runs it on the worker holding their shard, where every other holder of
 * those locks runs too, whether the function was handed to the worker or runs on the
 * coordinator. On the coordinator (Citus did not delegate the call: while a shard moves, say)
 * a plain SELECT inside a function goes to the worker outside any transaction there, so its
 * locks would be released as soon as it returned and two steps could work on one key at once:
 * FOR UPDATE makes Citus open the worker transaction first, and the locks last until commit.
 * A call delegated to the worker takes them in its own transaction, without the row locks.
 */
export function lockKeysSql(
  space: keyof typeof LOCK_SPACE,
  idsExpr: string,
  onRows = false,
): string {
  if (onRows) {
    const lock = `perform pg_advisory_xact_lock(${LOCK_SPACE[space]}, hashtext(t.id))
      from ${KEY_TABLE[space]} t where t.id = any(${idsExpr})
      order by hashtext(t.id)`;
    return `if citus_is_coordinator() then
      ${lock} for update;
    else
      ${lock};
    end if`;
  }
  return `perform pg_advisory_xact_lock(${LOCK_SPACE[space]}, k.h)
    from (select distinct hashtext(u) as h from unnest(${idsExpr}) as t(u)) k
    order by k.h`;
}

/**
 * Locks `ids` of `space` in the same order, shared (readers) or exclusive, by a query on their
 * rows (ids without a row get no lock): on Citus it runs on the worker that holds their shard,
 * inside this transaction, like the steps' locks.
 */
export async function lockKeys(
  tx: Transaction<Database>,
  space: keyof typeof LOCK_SPACE,
  ids: readonly string[],
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const fn = sql.raw(mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock');
  await sql`
    select ${fn}(${LOCK_SPACE[space]}::int4, hashtext(t.id))
    from ${sql.table(KEY_TABLE[space])} t where t.id = any(${ids}::text[])
    order by hashtext(t.id)`.execute(tx);
}
