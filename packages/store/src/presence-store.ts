/**
 * Last seen (issue 7): `users.last_seen`, written with a conditional update so that two nodes
 * racing (a user moving between nodes, a late write after a reconnect) never move it backwards.
 * Every statement reads or writes one user's shard on Citus (issue 15).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { LastSeenVisibility } from '@chat/protocol';
import { toChatError } from './errors';
import type { Database } from './schema';
import { EngineRouters, onShard, perShard } from './shard-router';

/** What decides whether one user sees another's last seen (see PgPresenceStore.lastSeenFor). */
export interface LastSeenFacts {
  readonly shared: boolean;
  readonly lastSeen: number | null;
  readonly visibility: LastSeenVisibility;
  readonly blocksAsker: boolean;
}

/**
 * @example
 * const presence = new PgPresenceStore(db);
 * await presence.touch(['alice'], Date.now()); // on connect, heartbeat and last disconnect
 * const { shared, lastSeen } = await presence.lastSeenFor('bob', 'alice');
 */
export class PgPresenceStore {
  private readonly routers: EngineRouters;

  constructor(private readonly db: Kysely<Database>) {
    this.routers = EngineRouters.of(db);
  }

  /**
   * Sets last_seen of the users to `at` where it is older (or unset); returns how many rows
   * moved. Users that do not exist yet are left alone (connecting creates them first).
   */
  async touch(userIds: readonly string[], at: number): Promise<number> {
    if (userIds.length === 0) return 0;
    try {
      const { users } = await this.routers.get();
      const moved = await perShard(
        users,
        [...new Set(userIds)],
        (u) => u,
        async (ids, keys) => {
          // Rows are locked in id order, as sends lock them: a batch updated in scan order could
          // deadlock with a send holding some of the same users.
          const result = await sql`
          update users set last_seen = ${at}
          where id in (
            select id from users
            where id = any(${ids}::text[]) and (last_seen is null or last_seen < ${at})
            order by id
            for update)${onShard('id', keys)}`.execute(this.db);
          return [Number(result.numAffectedRows ?? 0)];
        },
      );
      return moved.reduce((sum, n) => sum + n, 0);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /**
   * The target's stored last-seen time and what decides whether `asker` may see it: `shared`
   * is true when the two share a chat (a user always shares with themselves), `visibility` is
   * the target's setting ('contacts' for a user never seen), `blocksAsker` whether the target
   * blocked the asker (issue 16).
   */
  async lastSeenFor(asker: string, target: string): Promise<LastSeenFacts> {
    try {
      // The asker's chats from the asker's shard, then the target's row, chats and blocks from
      // the target's: "my chats" (user_chats) is kept per user, so no statement joins two users.
      const { rows: mine } = await sql<{ chat_id: string }>`
        select chat_id from user_chats where user_id = ${asker}`.execute(this.db);
      const { rows } = await sql<{
        shared: boolean;
        last_seen: string | null;
        visibility: LastSeenVisibility | null;
        blocks_asker: boolean;
      }>`
        select
          (${asker} = ${target} or exists(
            select 1 from user_chats
            where user_id = ${target} and chat_id = any(${mine.map((m) => m.chat_id)}::text[])))
            as shared,
          (select last_seen from users where id = ${target}) as last_seen,
          (select last_seen_visibility from users where id = ${target}) as visibility,
          exists(select 1 from user_blocks where user_id = ${target} and blocked_id = ${asker})
            as blocks_asker`.execute(this.db);
      const row = rows[0];
      return {
        shared: row?.shared === true,
        lastSeen: row?.last_seen === null || row === undefined ? null : Number(row.last_seen),
        visibility: row?.visibility ?? 'contacts',
        blocksAsker: row?.blocks_asker === true,
      };
    } catch (err) {
      throw toChatError(err);
    }
  }
}
