/**
 * Device cursors, written lazily (docs/durable-path.md): the node keeps each device's acks in
 * memory and writes them every few seconds, on disconnect and on shutdown, many devices in one
 * statement; the same statement deletes each user's events that every device has acked. A
 * cursor lost in a crash only makes devices get events again, which they drop by seq.
 *
 * Events at or above the lowest fan-out mark of any node are kept even when acked: a sweeper
 * repeating a dead node's fan-out must find them, or it would append them a second time.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import { WHOLE_BATCH, onShard, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';
import type { Kysely } from 'kysely';
import type { Database } from './schema';
import type { DeviceCursor } from './types';

/**
 * Moves the cursors forward (never back) and refreshes the devices' last_active, then deletes
 * the acked events created before `keepFrom` (the lowest fan-out mark). Returns the users whose
 * acked events newer than that were kept (for `deleteAcked` once the marks have moved on).
 */
export async function writeCursors(
  db: Kysely<Database>,
  cursors: readonly DeviceCursor[],
  now: number,
  keepFrom: number,
  router: KeyRouter = WHOLE_BATCH,
): Promise<string[]> {
  const latest = new Map<string, DeviceCursor>();
  for (const c of cursors) {
    const key = `${c.userId}\u0000${c.deviceId}`;
    const seen = latest.get(key);
    if (seen === undefined || c.seq > seen.seq) latest.set(key, c);
  }
  // Row order (user, device): the order every statement locks devices in.
  const rows = [...latest.values()].sort((a, b) =>
    a.userId === b.userId ? (a.deviceId < b.deviceId ? -1 : 1) : a.userId < b.userId ? -1 : 1,
  );
  if (rows.length === 0) return [];
  // A CTE's update is invisible to the rest of the statement: the floor takes the new cursors
  // from `cur` and those of the user's other devices from `devices`.
  const kept = await perShard(
    router,
    rows,
    (r) => r.userId,
    async (group, keys) => {
      const { rows: found } = await sql<{ user_id: string }>`
    with input as (
      select * from unnest(
        ${group.map((r) => r.userId)}::text[],
        ${group.map((r) => r.deviceId)}::text[],
        ${group.map((r) => r.seq)}::int8[]
      ) as t(user_id, device_id, seq)
    ),
    cur as (
      update devices d
      set acked_seq = greatest(d.acked_seq, i.seq),
        last_active = greatest(d.last_active, ${now}::int8)
      from input i
      where d.user_id = i.user_id and d.device_id = i.device_id${onShard('d.user_id', keys)}
      returning d.user_id, d.device_id, d.acked_seq
    ),
    floors as (
      select c.user_id, least(
        min(c.acked_seq),
        (select min(o.acked_seq) from devices o
          where o.user_id = c.user_id${onShard('o.user_id', keys)}
            and o.device_id <> all(array(select c2.device_id from cur c2 where c2.user_id = c.user_id)))
      ) as seq
      from cur c
      group by c.user_id
    ),
    gone as (
      delete from inbox i using floors f
      where i.user_id = f.user_id${onShard('i.user_id', keys)}
        and i.seq <= f.seq and i.created_at < ${keepFrom}::int8
    )
    select f.user_id from floors f
    where exists (
      select 1 from inbox i
      where i.user_id = f.user_id${onShard('i.user_id', keys)}
        and i.seq <= f.seq and i.created_at >= ${keepFrom}::int8)`.execute(db);
      return found;
    },
  );
  return kept.map((r) => r.user_id);
}

/**
 * Deletes the events of `users` that every device of theirs has acked and that were created
 * before `keepFrom`: what `writeCursors` had to keep because a fan-out mark was behind them
 * then. Returns the number of events deleted.
 */
export async function deleteAcked(
  db: Kysely<Database>,
  users: readonly string[],
  keepFrom: number,
  router: KeyRouter = WHOLE_BATCH,
): Promise<number> {
  if (users.length === 0) return 0;
  const counts = await perShard(
    router,
    [...new Set(users)],
    (u) => u,
    async (ids, keys) => {
      const result = await sql`
      delete from inbox i
      using (
        select d.user_id, min(d.acked_seq) as seq from devices d
        where d.user_id = any(${ids}::text[])
        group by d.user_id
      ) f
      where i.user_id = f.user_id${onShard('i.user_id', keys)}
        and i.seq <= f.seq and i.created_at < ${keepFrom}::int8`.execute(db);
      return [Number(result.numAffectedRows ?? 0)];
    },
  );
  return counts.reduce((sum, n) => sum + n, 0);
}

/**
 * The users' latest seqs in one query (users never seen are left out): the greatest of the
 * floor, the newest event and the furthest cursor.
 */
export async function latestSeqs(
  db: Kysely<Database>,
  userIds: readonly string[],
  router: KeyRouter = WHOLE_BATCH,
): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  const rows = await perShard(
    router,
    [...new Set(userIds)],
    (u) => u,
    async (ids, keys) => {
      const { rows: found } = await sql<{ id: string; latest: string }>`
      select u.id, ${latestSeq(keys)} as latest
      from users u where u.id = any(${ids}::text[])`.execute(db);
      return found;
    },
  );
  return new Map(rows.map((r) => [r.id, Number(r.latest)]));
}

/**
 * The latest seq of the user row `u` (see user-step.ts for why it is derived); `keys`, the
 * statement's users, keep its lookups on their shard on Citus.
 */
export function latestSeq(keys: readonly string[] | null): RawBuilder<unknown> {
  return sql`greatest(
  u.next_seq - 1,
  coalesce((select max(x.seq) from inbox x
    where x.user_id = u.id${onShard('x.user_id', keys)}), 0),
  coalesce((select max(d.acked_seq) from devices d
    where d.user_id = u.id${onShard('d.user_id', keys)}), 0))`;
}
