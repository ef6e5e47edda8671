/**
 * The chat step of a send (docs/durable-path.md): for a batch of sends, in one statement that
 * touches only chat-keyed rows (chats, chat_members, messages), check membership and
 * idempotency and store the new messages. The sender's ack waits only for this commit: the
 * message is durable, and the node that stored it (`origin`) owes its fan-out to the
 * recipients' inboxes (user-step.ts), which a sweeper finishes should that node die.
 *
 * Ids: the batch's chats are locked (key-locks.ts), so sends to one chat (from any node) and
 * membership changes take turns, and each new message gets the chat's next id:
 * above every id the chat has, and at least created_at * 1000 - 1 + its rank, so an id is
 * never reused after retention deleted the chat's newest messages.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { ChatError } from '@chat/protocol';
import { lockKeysSql } from './key-locks';
import { WHOLE_BATCH, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';
import type { Database } from './schema';
import type { SendInput } from './types';

/** Outcome of one send of a batch. */
export type ChatStepOutcome =
  | {
      readonly status: 'new';
      readonly messageId: string;
      readonly ts: number;
      /** Members of the chat when it was stored, sorted: the fan-out's recipients. */
      readonly recipients: readonly string[];
    }
  | {
      readonly status: 'dup';
      readonly messageId: string;
      readonly ts: number;
      /** The chat's members now (a dup may be fanned out again, see PgChatStore). */
      readonly recipients: readonly string[];
    }
  | { readonly status: 'refused'; readonly error: ChatError };

interface ChatStepRow {
  i: number;
  status: 'new' | 'dup' | 'NOT_FOUND' | 'NOT_MEMBER' | 'BLOCKED';
  message_id: string | null;
  ts: string | null;
  recipients: string[] | null;
}

/**
 * Stores a batch of sends in one statement (one transaction) per shard (one on plain
 * PostgreSQL) and returns their outcomes in batch order. A send Postgres refuses (say, a NUL
 * byte in a body) fails its statement and the batch: the caller splits it and retries, and
 * sends stored already come back as dups.
 */
export async function storeMessages(
  db: Kysely<Database>,
  inputs: readonly SendInput[],
  origin: string,
  router: KeyRouter = WHOLE_BATCH,
): Promise<ChatStepOutcome[]> {
  const rows = await perShard(
    router,
    inputs.map((input, index) => ({ input, index })),
    (x) => x.input.chatId,
    async (items, _, route) => {
      const groupRows = await callChatStep(
        db,
        route,
        items.map((x) => x.input),
        origin,
      );
      // Back to positions in the whole batch.
      return groupRows.map((r) => ({ ...r, i: items[r.i - 1]!.index + 1 }));
    },
  );
  const byIndex = new Map(rows.map((r) => [r.i, r]));
  return inputs.map((input, index) => {
    const row = byIndex.get(index + 1);
    if (row === undefined) throw new Error(`send ${index + 1} has no outcome`);
    switch (row.status) {
      case 'NOT_FOUND':
        return refused(new ChatError('NOT_FOUND', 'no such chat', { chatId: input.chatId }));
      case 'NOT_MEMBER':
        return refused(
          new ChatError('NOT_MEMBER', 'not a member of this chat', { chatId: input.chatId }),
        );
      case 'BLOCKED':
        return refused(
          new ChatError('BLOCKED', 'the other member of this chat blocked you', {
            chatId: input.chatId,
          }),
        );
      case 'dup':
        return {
          status: 'dup',
          messageId: row.message_id!,
          ts: Number(row.ts),
          recipients: row.recipients ?? [],
        };
      case 'new':
        return {
          status: 'new',
          messageId: row.message_id!,
          ts: Number(row.ts),
          recipients: row.recipients ?? [],
        };
    }
  });
}

/** One statement: the plain function, or on Citus its routed twin on the shard of `route`. */
async function callChatStep(
  db: Kysely<Database>,
  route: string | null,
  inputs: readonly SendInput[],
  origin: string,
): Promise<ChatStepRow[]> {
  const args = sql`
      ${inputs.map((s) => s.chatId)}::text[],
      ${inputs.map((s) => s.senderId)}::text[],
      ${inputs.map((s) => s.clientMsgId)}::text[],
      ${inputs.map((s) => s.body)}::text[],
      ${inputs.map((s) => JSON.stringify(s.attachments))}::jsonb[],
      ${inputs.map((s) => s.now)}::int8[],
      ${origin}::text`;
  const { rows } =
    route === null
      ? await sql<ChatStepRow>`select * from chat_store_messages(${args})`.execute(db)
      : await sql<ChatStepRow>`select * from chat_store_messages_at(${route}::text, ${args})`.execute(
          db,
        );
  return rows;
}

function refused(error: ChatError): ChatStepOutcome {
  return { status: 'refused', error };
}

/**
 * The function of migration 0007. Membership is read after the chats are locked, and
 * membership changes lock them too, so it holds until commit. A (chat, sender, client_msg_id)
 * stored before is answered as a dup with the stored id and time, and so is a repeat of it
 * later in the same batch (the lock makes "stored before" include concurrent transactions
 * that committed while this one waited).
 */
/** The step function's arguments, in order (its routed twin takes a route first). */
export const CHAT_STEP_ARGS =
  'p_chat_ids text[], p_sender_ids text[], p_client_msg_ids text[], p_bodies text[], p_attachments jsonb[], p_created_ats int8[], p_origin text';

/**
 * A send is refused (BLOCKED) in a one-to-one chat, a chat of exactly two members, whose other
 * member blocked the sender (issue 16). In a bigger chat blocked members still send: a block
 * is between two people, and the rest of a group keeps hearing both.
 */
const SENDER_BLOCKED = `coalesce(jsonb_array_length(v_members -> t.chat) = 2
          and (v_blocked -> t.chat) ? t.sender, false)`;

/**
 * The step's function. `onShards` (Citus): each lookup also names the batch's keys, so that Citus
 * can keep the statement on one shard; plain PostgreSQL goes without, where the extra `= any`
 * could turn a key lookup into a scan of every key of the batch.
 */
export function chatStepFunction(onShards: boolean): string {
  const onShard = (column: string): string => (onShards ? ` and ${column} = any(p_chat_ids)` : '');
  // Plain PostgreSQL: the CTEs above store the new messages and note the new ids.
  const PLAIN_STORE = `,
    ins as (
      insert into messages (chat_id, id, kind, sender_id, client_msg_id, body, attachments,
          created_at, origin)
        select fr.chat, b.b + fr.k, 'message', p_sender_ids[fr.i], p_client_msg_ids[fr.i],
          p_bodies[fr.i], p_attachments[fr.i], p_created_ats[fr.i], p_origin
        from fresh fr join base b on b.chat = fr.chat
        order by fr.chat, fr.k
    )
    select array_agg(fr.i order by fr.i), array_agg(b.b + fr.k order by fr.i)
      into v_new_i, v_new_id
      from fresh fr join base b on b.chat = fr.chat;

    -- listChats orders by activity: keep it to the minute without a write per message.
    update chats c set last_message_at = n.at
    from (
      select p_chat_ids[t.i] as chat, max(p_created_ats[t.i]) as at
      from unnest(v_new_i) as t(i) group by 1
    ) n
    where c.id = n.chat${onShard('c.id')}
      and (c.last_message_at is null or c.last_message_at < n.at - 60000);
`;
  // Citus: a CTE that inserts what it selected makes Citus plan the CTEs apart and send their
  // results to every node in a two-phase commit (see user-step.ts); the SELECT numbers the new
  // messages, an INSERT of the input's rows at those positions stores them.
  const CITUS_STORE = `
    select array_agg(fr.i order by fr.i), array_agg(b.b + fr.k order by fr.i)
      into v_new_i, v_new_id
      from fresh fr join base b on b.chat = fr.chat;
    insert into messages (chat_id, id, kind, sender_id, client_msg_id, body, attachments,
        created_at, origin)
      select p_chat_ids[t.i], t.id, 'message', p_sender_ids[t.i], p_client_msg_ids[t.i],
        p_bodies[t.i], p_attachments[t.i], p_created_ats[t.i], p_origin
      from unnest(v_new_i, v_new_id) as t(i, id)
      order by 1, 2;

    -- listChats orders by activity: keep it to the minute without a write per message (one
    -- statement per chat: a join to unnest() would be planned apart, see user-step.ts).
    for v_chat, v_at in
      select p_chat_ids[t.i], max(p_created_ats[t.i]) from unnest(v_new_i) as t(i) group by 1
    loop
      update chats c set last_message_at = v_at
      where c.id = v_chat${onShard('c.id')}
        and (c.last_message_at is null or c.last_message_at < v_at - 60000);
    end loop;
`;
  return `
  create or replace function chat_store_messages(${CHAT_STEP_ARGS})
  returns table (i int, status text, message_id int8, ts int8, recipients text[])
  language plpgsql
  -- Plan each statement once per connection (the arrays do not change the best plan), and
  -- by key lookups: a connection's first call may come while the tables are nearly empty,
  -- when a scan looks cheapest, and the plan would stay with it as the tables grow.
  set plan_cache_mode = force_generic_plan
  set enable_seqscan = off
  as $fn$
  #variable_conflict use_column
  declare
    v_members jsonb;   -- chat id -> its members (sorted), for chats that exist
    v_blocked jsonb;   -- chat id -> its members blocked by another member (block-marks.ts)
    v_new_i int[];     -- batch positions stored now, their ids
    v_new_id int8[];${
      onShards
        ? `
    v_chat text;       -- a chat of the batch with new messages, and its newest time
    v_at int8;`
        : ''
    }
  begin
    ${lockKeysSql('chat', 'p_chat_ids', onShards)};
    -- Blocked members come from a partial index that holds only marked rows: nearly free.
    select coalesce(jsonb_object_agg(c.id, array(
        select m.user_id from chat_members m
        where m.chat_id = c.id${onShard('m.chat_id')} order by m.user_id)), '{}'),
      coalesce(jsonb_object_agg(c.id, array(
        select m.user_id from chat_members m
        where m.chat_id = c.id${onShard('m.chat_id')} and m.blocked_by <> '{}'
          and exists (select 1 from chat_members o
                      where o.chat_id = c.id${onShard('o.chat_id')}
                        and o.user_id = any(m.blocked_by)))), '{}')
      into v_members, v_blocked
      from chats c where c.id = any(p_chat_ids);

    -- First valid copy of each (chat, sender, client) in the batch that is not stored yet,
    -- numbered within its chat; ids continue from the chat's highest.
    with sends as (
      select t.i::int as i, t.chat, t.sender, t.client
      from unnest(p_chat_ids, p_sender_ids, p_client_msg_ids) with ordinality
        as t(chat, sender, client, i)
      where (v_members -> t.chat) ? t.sender
        and not ${SENDER_BLOCKED}
    ),
    firsts as (
      select distinct on (s.chat, s.sender, s.client) s.i, s.chat, s.sender, s.client
      from sends s order by s.chat, s.sender, s.client, s.i
    ),
    -- Lookups are scalar subqueries with LIMIT 1: the planner cannot turn them into joins
    -- that read a whole index (a generic plan made while the tables were small would).
    fresh as (
      select f.i, f.chat, row_number() over (partition by f.chat order by f.i) as k
      from firsts f
      where (select 1 from messages m
             where m.chat_id = f.chat${onShard('m.chat_id')}
               and m.sender_id = f.sender and m.client_msg_id = f.client
             limit 1) is null
    ),
    base as (
      select c.chat, greatest(
          coalesce((select max(m.id) from messages m
                    where m.chat_id = c.chat${onShard('m.chat_id')}), 0),
          c.first_at * 1000 - 1) as b
      from (select fr.chat, min(p_created_ats[fr.i]) as first_at from fresh fr group by fr.chat) c
    )${onShards ? CITUS_STORE : PLAIN_STORE}

    return query
      with sends as (
        select t.i::int as i, t.chat, t.sender, t.client,
          (v_members -> t.chat) ? t.sender as member,
          ${SENDER_BLOCKED} as blocked
        from unnest(p_chat_ids, p_sender_ids, p_client_msg_ids) with ordinality
          as t(chat, sender, client, i)
      ),
      fresh as (
        select n.i, n.id from unnest(v_new_i, v_new_id) as n(i, id)
      )
      select s.i,
        case
          when v_members -> s.chat is null then 'NOT_FOUND'
          when not s.member then 'NOT_MEMBER'
          when s.blocked then 'BLOCKED'
          when f.i is not null then 'new'
          else 'dup'
        end,
        coalesce(f.id, m.id),
        coalesce(p_created_ats[f.i], m.created_at),
        case when s.member and not s.blocked then
          array(select jsonb_array_elements_text(v_members -> s.chat)) end
      from sends s
      left join fresh f on f.i = s.i
      left join lateral (
        select m.id, m.created_at from messages m
        where f.i is null and s.member and not s.blocked
          and m.chat_id = s.chat${onShard('m.chat_id')}
          and m.sender_id = s.sender and m.client_msg_id = s.client
        limit 1
      ) m on true
      order by s.i;
  end
  $fn$`;
}

/** The plain PostgreSQL version (migration 0007). */
export const CHAT_STEP_FUNCTION = chatStepFunction(false);
