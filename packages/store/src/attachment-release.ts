/**
 * When an attachment object may go (issue 16, item 10): its index row (key, chat) is released
 * once the message that brought the key reached every recipient (their delivered watermarks
 * passed it) and then either every device of every recipient was handed a download URL
 * (attachment-fetches.ts) or `keepAfterDeliveryMs` passed since that delivery was first seen.
 * A key no index row holds any more is queued for object deletion. Reading a message does not
 * release anything: a device that reads before it downloads (a chat screen marks a message read
 * as it shows it) still finds the object. Retention deletes index rows older than the retention
 * period regardless (retention-store.ts), so nothing outlives it.
 *
 * Recipients are the members other than the key's owner (the sender) who joined before the
 * message. A chat without any never releases on fetches, only after the grace period.
 *
 * Every statement touches one chat shard (index rows, memberships) or one user shard (devices,
 * fetches), except the reads that pick the window and look for other index rows of a key.
 */
import { sql } from 'kysely';
import type { Transaction } from 'kysely';
import type { Database } from './schema';
import { onShard, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';

/** One window of the release scan. */
export interface ReleasedAttachments {
  /** Where the window ended; pass it as `after` to continue, null when none was left. */
  readonly lastPosition: string | null;
  /** Index rows released. */
  readonly released: number;
  /** Keys queued for object deletion (no index row left). */
  readonly queued: number;
}

interface IndexRow {
  readonly key: string;
  readonly chat_id: string;
  readonly created_at: string;
}

interface DeliveryFacts extends IndexRow {
  /** Recipients (members but the owner, joined before the message). */
  readonly recipients: string[];
  /** When every recipient's delivered watermark was first seen past the message; null: not yet. */
  readonly delivered_at: string | null;
}

/** A release position: '' (the start) or JSON [createdAt, chatId, key]. */
function parsePosition(position: string): [number, string, string] {
  if (position === '') return [-1, '', ''];
  return JSON.parse(position) as [number, string, string];
}

/**
 * Looks at the `limit` index rows after `after` (in (created_at, chat, key) order) and releases
 * those whose time has come; see the module comment.
 */
export async function releaseAttachments(
  tx: Transaction<Database>,
  routers: { readonly chats: KeyRouter; readonly users: KeyRouter },
  after: string,
  now: number,
  keepAfterDeliveryMs: number,
  limit: number,
): Promise<ReleasedAttachments> {
  const [fromAt, fromChat, fromKey] = parsePosition(after);
  const { rows: window } = await sql<IndexRow>`
    select key, chat_id, created_at from message_attachments
    where (created_at, chat_id, key) > (${fromAt}::int8, ${fromChat}, ${fromKey})
    order by created_at, chat_id, key
    limit ${limit}`.execute(tx);
  const last = window.at(-1);
  if (last === undefined) return { lastPosition: null, released: 0, queued: 0 };
  const lastPosition = JSON.stringify([Number(last.created_at), last.chat_id, last.key]);

  // Per chat shard: note full delivery the first time it is seen, and read who the recipients are.
  const facts = await perShard(
    routers.chats,
    window,
    (r) => r.chat_id,
    async (group, keys) => {
      const { rows } = await sql<DeliveryFacts>`
        with picked as (
          -- Keys are u/<owner>/<random> (media policy.ts): the owner is the sender.
          select k.key, k.chat_id, split_part(k.key, '/', 2) as owner
          from unnest(${group.map((r) => r.key)}::text[], ${group.map((r) => r.chat_id)}::text[])
            as k(key, chat_id)
        ),
        facts as (
          select a.key, a.chat_id, a.created_at, a.delivered_at,
            array(select cm.user_id from chat_members cm
                  where cm.chat_id = a.chat_id${onShard('cm.chat_id', keys)}
                    and cm.user_id <> p.owner and cm.joined_at <= a.created_at
                  order by cm.user_id) as recipients,
            not exists (select 1 from chat_members cm
                  where cm.chat_id = a.chat_id${onShard('cm.chat_id', keys)}
                    and cm.user_id <> p.owner and cm.joined_at <= a.created_at
                    and cm.delivered_upto < a.message_id) as delivered
          from message_attachments a
          join picked p on p.key = a.key and p.chat_id = a.chat_id
          where true${onShard('a.chat_id', keys)}
        ),
        noted as (
          update message_attachments a set delivered_at = ${now}::int8
          from facts f
          where a.key = f.key and a.chat_id = f.chat_id${onShard('a.chat_id', keys)}
            and f.delivered and a.delivered_at is null
          returning a.key, a.chat_id
        )
        select f.key, f.chat_id, f.created_at, f.recipients,
          case when n.key is not null then ${now}::int8 else f.delivered_at end as delivered_at
        from facts f
        left join noted n on n.key = f.key and n.chat_id = f.chat_id
        where f.delivered`.execute(tx);
      return rows;
    },
  );
  if (facts.length === 0) return { lastPosition, released: 0, queued: 0 };

  // Per user shard: the (recipient, key) pairs with a device that has not fetched the key.
  const pairs = facts.flatMap((f) => f.recipients.map((user) => ({ user, key: f.key })));
  const waiting = new Set(
    (
      await perShard(
        routers.users,
        pairs,
        (p) => p.user,
        async (group, keys) => {
          const { rows } = await sql<{ user_id: string; key: string }>`
            select distinct p.user_id, p.key
            from unnest(${group.map((p) => p.user)}::text[], ${group.map((p) => p.key)}::text[])
              as p(user_id, key)
            join devices d on d.user_id = p.user_id${onShard('d.user_id', keys)}
            where not exists (
              select 1 from attachment_fetches f
              where f.user_id = d.user_id${onShard('f.user_id', keys)}
                and f.key = p.key and f.device_id = d.device_id)`.execute(tx);
          return rows;
        },
      )
    ).map((r) => `${r.user_id}\u0000${r.key}`),
  );
  const due = facts.filter(
    (f) =>
      now - Number(f.delivered_at) >= keepAfterDeliveryMs ||
      (f.recipients.length > 0 && f.recipients.every((u) => !waiting.has(`${u}\u0000${f.key}`))),
  );
  if (due.length === 0) return { lastPosition, released: 0, queued: 0 };

  const released = await perShard(
    routers.chats,
    due,
    (r) => r.chat_id,
    async (group, keys) => {
      const { rows } = await sql<{ key: string }>`
        delete from message_attachments a
        using unnest(${group.map((r) => r.key)}::text[], ${group.map((r) => r.chat_id)}::text[])
          as d(key, chat_id)
        where a.key = d.key and a.chat_id = d.chat_id${onShard('a.chat_id', keys)}
        returning a.key`.execute(tx);
      return rows.map((r) => r.key);
    },
  );
  return { lastPosition, released: released.length, queued: await queueUnindexed(tx, released) };
}

/** Queues those of `keys` that no index row holds any more; returns how many were queued. */
async function queueUnindexed(tx: Transaction<Database>, keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const { rows: held } = await sql<{ key: string }>`
    select distinct key from message_attachments where key = any(${[...keys]}::text[])`.execute(tx);
  const stillHeld = new Set(held.map((r) => r.key));
  const unindexed = [...new Set(keys)].filter((k) => !stillHeld.has(k));
  if (unindexed.length === 0) return 0;
  const { rows } = await sql<{ key: string }>`
    insert into media_deletions (key) select unnest(${unindexed}::text[])
    on conflict (key) do nothing
    returning key`.execute(tx);
  return rows.length;
}
