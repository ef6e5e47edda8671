/**
 * Attachment keys that no message carries any more (retention-store.ts): their index rows go
 * and the keys are queued in `media_deletions`, whose rows the cleanup job turns into object
 * deletions.
 *
 * Which messages may carry a key comes from the attachment index (`message_attachments`, one
 * row per key and chat, written by a trigger when a message with the key is stored), so the
 * check reads only those chats' messages, one chat shard per statement. Called in the
 * transaction that deleted the messages, after the delete: the deleted rows no longer count.
 */
import { sql } from 'kysely';
import type { Transaction } from 'kysely';
import type { Database } from './schema';
import { onShard, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';

export interface QueuedOrphans {
  /** Keys newly queued for object deletion. */
  readonly queued: number;
  /** Index rows removed. */
  readonly indexRows: number;
}

/** Queues those of `keys` that no message carries; `chats` splits the check by chat shard. */
export async function queueOrphanKeys(
  tx: Transaction<Database>,
  chats: KeyRouter,
  keys: readonly string[],
): Promise<QueuedOrphans> {
  if (keys.length === 0) return { queued: 0, indexRows: 0 };
  const { rows: indexed } = await sql<{ key: string; chat_id: string }>`
    select key, chat_id from message_attachments where key = any(${[...keys]}::text[])`.execute(tx);
  const carried = await perShard(
    chats,
    indexed,
    (r) => r.chat_id,
    async (group, shardKeys) => {
      const { rows } = await sql<{ key: string }>`
      select distinct c.key
      from unnest(${group.map((r) => r.key)}::text[], ${group.map((r) => r.chat_id)}::text[])
        as c(key, chat_id)
      where exists (
        select 1 from messages m
        where m.chat_id = c.chat_id${onShard('m.chat_id', shardKeys)}
          and m.attachments <> '[]'::jsonb
          and m.attachments @> jsonb_build_array(jsonb_build_object('key', c.key)))`.execute(tx);
      return rows.map((r) => r.key);
    },
  );
  const stillCarried = new Set(carried);
  const orphans = keys.filter((k) => !stillCarried.has(k));
  if (orphans.length === 0) return { queued: 0, indexRows: 0 };
  const unindexed = await sql`
    delete from message_attachments where key = any(${orphans}::text[])`.execute(tx);
  const { rows: queued } = await sql<{ key: string }>`
    insert into media_deletions (key) select unnest(${orphans}::text[])
    on conflict (key) do nothing
    returning key`.execute(tx);
  return { queued: queued.length, indexRows: Number(unindexed.numAffectedRows ?? 0) };
}
