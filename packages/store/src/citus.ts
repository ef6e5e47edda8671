/**
 * The storage engine under the store: plain PostgreSQL, or Citus (distributed PostgreSQL),
 * detected from the database: Citus when its extension is installed in it.
 *
 * On Citus the tables are distributed by the key every hot-path statement names (issue 15,
 * docs/durable-path.md): user-keyed tables by `user_id` (users by `id`), co-located with each
 * other; chat-keyed tables by `chat_id` (chats by `id`), co-located with each other; small,
 * rarely written tables are reference tables (a copy on every node). Migration
 * 0008_distribute does this only where Citus is present, so one schema and one code path serve
 * both engines.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

export type StorageEngine = 'postgres' | 'citus';

/** Tables distributed by user, co-located with `users` (the first is the anchor). */
export const USER_KEYED_TABLES: readonly (readonly [table: string, column: string])[] = [
  ['users', 'id'],
  ['devices', 'user_id'],
  ['inbox', 'user_id'],
  ['user_chats', 'user_id'],
  ['receipt_marks', 'user_id'],
  ['expired_devices', 'user_id'],
];

/** Tables distributed by chat, co-located with `chats` (the first is the anchor). */
export const CHAT_KEYED_TABLES: readonly (readonly [table: string, column: string])[] = [
  ['chats', 'id'],
  ['chat_members', 'chat_id'],
  ['messages', 'chat_id'],
  ['message_attachments', 'chat_id'],
];

/**
 * Small tables copied to every node: one row per chat node (fan-out marks), and the queue of
 * object keys to delete (written by the retention job a few times a minute).
 */
export const REFERENCE_TABLES: readonly string[] = ['fanout_marks', 'media_deletions'];

/** Which engine `db` runs on. */
export async function detectEngine<DB>(db: Kysely<DB>): Promise<StorageEngine> {
  const { rows } = await sql<{ citus: boolean }>`
    select exists (select 1 from pg_extension where extname = 'citus') as citus`.execute(db);
  return rows[0]?.citus === true ? 'citus' : 'postgres';
}

/** How many shards the user-keyed tables have on Citus; null on plain PostgreSQL. */
export async function userShardCount<DB>(db: Kysely<DB>): Promise<number | null> {
  if ((await detectEngine(db)) !== 'citus') return null;
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from pg_dist_shard where logicalrelid = 'users'::regclass`.execute(db);
  return Number(rows[0]?.n ?? 0) || null;
}
