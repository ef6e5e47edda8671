/**
 * The user step of a fan-out (docs/durable-path.md): appends events to users' inboxes, in one
 * statement that touches only user-keyed rows (users, devices, inbox, user_chats). Each user's
 * row is locked while their new events are numbered, so every user's seqs are contiguous in
 * commit order; nothing else is written per event (the next seq is derived, not stored).
 *
 * Idempotent on (user, chat, message): an event already in the inbox is not appended again,
 * so a fan-out may be repeated (a retry, a sweeper finishing a dead node's work) and still
 * leaves exactly one row. An event whose storing node was swept (its fan-out taken over by a
 * sweeper) is left to the sweeper. Rows are deleted only below every node's fan-out mark
 * (cursors.ts), so a repeated fan-out always finds the rows of its first attempt.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { InboxEvent } from '@chat/protocol';
import { lockKeysSql } from './key-locks';
import { WHOLE_BATCH, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';
import type { Database } from './schema';
import type { Delivery } from './types';

/** One event for one user's inbox. */
export interface FanoutEvent {
  readonly userId: string;
  /**
   * The event; its seq is assigned by the user step. Receipt events only for devices that
   * take receipts as events (legacy-receipts.ts).
   */
  readonly event: InboxEvent;
  /** messages.id of the message or chat change within event.chatId. */
  readonly messageId: string;
  /** Append only if the user has a device other than this one (a sender's own copy). */
  readonly unlessOnlyDevice?: string;
  /** The chat enters (`add`) or leaves (`remove`) the user's chat list with this event. */
  readonly membership?: 'add' | 'remove';
  /** The node that stored the message and owes its fan-out; null for a sweeper. */
  readonly origin: string | null;
}

/**
 * Appends the events in one statement per shard (one on plain PostgreSQL) and returns those
 * appended now, with their seqs, in input order (events already there, or skipped, are left
 * out). Events of one user stay in input order within their statement.
 */
export async function appendEvents(
  db: Kysely<Database>,
  events: readonly FanoutEvent[],
  router: KeyRouter = WHOLE_BATCH,
): Promise<Delivery[]> {
  if (events.length === 0) return [];
  const appended = await perShard(
    router,
    events.map((event, index) => ({ event, index })),
    (x) => x.event.userId,
    async (items, _, route) => {
      const rows = await callUserStep(
        db,
        route,
        items.map((x) => x.event),
      );
      return rows.map((r) => ({ index: items[r.i - 1]!.index, seq: Number(r.seq) }));
    },
  );
  return appended
    .sort((x, y) => x.index - y.index)
    .map(({ index, seq }) => {
      const e = events[index]!;
      return { userId: e.userId, event: { ...e.event, seq } };
    });
}

/** One statement: the plain function, or on Citus its routed twin on the shard of `route`. */
async function callUserStep(
  db: Kysely<Database>,
  route: string | null,
  events: readonly FanoutEvent[],
): Promise<{ i: number; seq: string }[]> {
  const col = <T>(pick: (e: FanoutEvent) => T): T[] => events.map(pick);
  const users = [...new Set(col((e) => e.userId))].sort();
  const args = sql`
      ${users}::text[],
      ${col((e) => e.userId)}::text[],
      ${col((e) => e.event.kind)}::text[],
      ${col((e) => e.event.chatId)}::text[],
      ${col((e) => e.messageId)}::int8[],
      ${col((e) => (e.event.kind === 'message' ? e.event.from : e.event.kind === 'chat' ? e.event.by : null))}::text[],
      ${col((e) => (e.event.kind === 'message' ? e.event.body : null))}::text[],
      ${col((e) => (e.event.kind === 'message' ? JSON.stringify(e.event.attachments) : '[]'))}::jsonb[],
      ${col((e) => payloadOf(e.event))}::jsonb[],
      ${col((e) => e.event.ts)}::int8[],
      ${col((e) => e.origin)}::text[],
      ${col((e) => e.unlessOnlyDevice ?? null)}::text[],
      ${col((e) => e.membership ?? null)}::text[]`;
  const { rows } =
    route === null
      ? await sql<{ i: number; seq: string }>`select * from chat_append_events(${args})`.execute(db)
      : await sql<{
          i: number;
          seq: string;
        }>`select * from chat_append_events_at(${route}::text, ${args})`.execute(db);
  return rows;
}

/** The `payload` column: what a chat or receipt event has beside its common fields. */
function payloadOf(event: InboxEvent): string | null {
  switch (event.kind) {
    case 'chat':
      return JSON.stringify(chatPayload(event));
    case 'receipt':
      return JSON.stringify({ user: event.user, status: event.status });
    default:
      return null;
  }
}

/** The stored fields of a chat event beside chatId and ts. */
export function chatPayload(event: Extract<InboxEvent, { kind: 'chat' }>): object {
  const { change, members, by } = event;
  return event.admin === true ? { change, members, by, admin: true } : { change, members, by };
}

/**
 * The function of migration 0007. Users are locked in id order (the same order everywhere, so
 * two steps cannot deadlock), created first when missing; the statements after the lock see
 * every event committed before it (a new snapshot per statement). The next seq of a user is
 * the greatest of users.next_seq (a floor retention raises), the highest seq in the inbox + 1
 * and the highest device cursor + 1: events are deleted only once every device acked them.
 */
/** Creates the batch's users that have no row yet (v_locked: a scratch count). */
const CREATE_MISSING_USERS = `perform 1 from users where id = any(p_distinct_users);
    get diagnostics v_locked = row_count;
    if v_locked < cardinality(p_distinct_users) then
      insert into users (id) select u from unnest(p_distinct_users) as t(u) order by u
        on conflict (id) do nothing;
    end if;`;

/** The step function's arguments, in order (its routed twin takes a route first). */
export const USER_STEP_ARGS =
  'p_distinct_users text[], p_users text[], p_kinds text[], p_chat_ids text[], p_message_ids int8[], p_senders text[], p_bodies text[], p_attachments jsonb[], p_payloads jsonb[], p_created_ats int8[], p_origins text[], p_unless_only_device text[], p_memberships text[]';

/**
 * The step's function. `onShards` (Citus): each lookup also names the batch's keys, so that Citus
 * can keep the statement on one shard; plain PostgreSQL goes without, where the extra `= any`
 * could turn a key lookup into a scan of every key of the batch.
 */
export function userStepFunction(onShards: boolean): string {
  const onShard = (column: string): string =>
    onShards ? ` and ${column} = any(p_distinct_users)` : '';
  // The events to append now, numbered with their seqs (n: i, seq and the input's columns).
  const numbered = `
      with ev as (
        select t.*
        from unnest(p_users, p_kinds, p_chat_ids, p_message_ids, p_senders, p_bodies,
            p_attachments, p_payloads, p_created_ats, p_origins, p_unless_only_device,
            p_memberships)
          with ordinality as t(user_id, kind, chat_id, message_id, sender_id, body,
            attachments, payload, created_at, origin, only_device, membership, i)
      ),
      -- Lookups are scalar subqueries with LIMIT 1: the planner cannot turn them into joins
      -- that read a whole index (a generic plan made while the inbox was small would).
      -- Message and chat events at most once per (user, chat, message); receipt events (for
      -- devices that take them as events) are never repeated by a retry: not checked.
      wanted as (
        select distinct on (ev.user_id, ev.chat_id, ev.message_id, ev.kind, ev.payload) ev.*
        from ev
        -- The sender's own copy first: for a sender with one device it is skipped by the
        -- cheapest test (the conditions are checked in this order).
        where (ev.only_device is null or (
            select 1 from devices d
            where d.user_id = ev.user_id${onShard('d.user_id')}
              and d.device_id <> ev.only_device limit 1) is not null)
          and (ev.kind = 'receipt' or (select 1 from inbox x
               where x.user_id = ev.user_id${onShard('x.user_id')}
                 and x.chat_id = ev.chat_id
                 and x.message_id = ev.message_id and x.kind in ('message', 'chat')
               limit 1) is null)
          and (ev.origin is null or v_swept -> ev.origin is null
            or (v_swept ->> ev.origin)::int8 <= ev.created_at)
        order by ev.user_id, ev.chat_id, ev.message_id, ev.kind, ev.payload, ev.i
      ),
      base as (
        select w.user_id, greatest(
            (select u.next_seq from users u
              where u.id = w.user_id${onShard('u.id')}),
            coalesce((select max(x.seq) from inbox x
              where x.user_id = w.user_id${onShard('x.user_id')}), 0) + 1,
            coalesce((select max(d.acked_seq) from devices d
              where d.user_id = w.user_id${onShard('d.user_id')}), 0) + 1)
          as next_seq
        from (select distinct user_id from wanted) w
      ),
      numbered as (
        select w.*, b.next_seq + row_number() over (partition by w.user_id order by w.i) - 1
          as seq
        from wanted w join base b on b.user_id = w.user_id
      )`;
  // Plain PostgreSQL: one statement numbers and appends.
  const PLAIN_APPEND = `return query
${numbered},
      appended as (
        insert into inbox (user_id, seq, kind, chat_id, message_id, sender_id, body,
            attachments, payload, created_at)
          select n.user_id, n.seq, n.kind, n.chat_id, n.message_id, n.sender_id, n.body,
            coalesce(n.attachments, '[]'::jsonb), n.payload, n.created_at
          from numbered n
      )
      select n.i::int, n.seq from numbered n order by n.i;`;
  // Citus: a CTE that inserts what it selected makes Citus plan the CTEs apart and send their
  // results to every node in a two-phase commit (its INSERT ... SELECT is pushed down only from
  // distributed tables). So a SELECT (one shard, run where the shard is) numbers the events,
  // and an INSERT of the input's rows at those positions appends them there.
  const CITUS_APPEND = `select array_agg(n.i order by n.i), array_agg(n.seq order by n.i)
      into v_i, v_seq
      from (${numbered}
      select n.i, n.seq from numbered n) n;
    insert into inbox (user_id, seq, kind, chat_id, message_id, sender_id, body, attachments,
        payload, created_at)
      select p_users[t.i], t.seq, p_kinds[t.i], p_chat_ids[t.i], p_message_ids[t.i],
        p_senders[t.i], p_bodies[t.i], coalesce(p_attachments[t.i], '[]'::jsonb),
        p_payloads[t.i], p_created_ats[t.i]
      from unnest(v_i, v_seq) as t(i, seq);
    return query select t.i::int, t.seq from unnest(v_i, v_seq) as t(i, seq) order by t.i;`;
  const PLAIN_CHAT_LISTS = `if exists (select 1 from unnest(p_memberships) as m(v) where m.v is not null) then
      insert into user_chats (user_id, chat_id, joined_at)
        select t.user_id, t.chat_id, t.created_at
        from unnest(p_users, p_chat_ids, p_message_ids, p_created_ats, p_memberships)
          as t(user_id, chat_id, message_id, created_at, membership)
        where t.membership = 'add' and exists (
          select 1 from inbox x
          where x.user_id = t.user_id${onShard('x.user_id')} and x.chat_id = t.chat_id
            and x.message_id = t.message_id and x.kind = 'chat')
        on conflict (user_id, chat_id) do nothing;
      delete from user_chats uc
        using unnest(p_users, p_chat_ids, p_memberships) as t(user_id, chat_id, membership)
        where t.membership = 'remove' and uc.user_id = t.user_id${onShard('uc.user_id')} and uc.chat_id = t.chat_id;
    end if;
`;
  // Citus: from the positions appended now, and a user leaving a chat by constants (a join to
  // unnest() would be planned apart and sent to every node, as above; leaving is rare).
  const CITUS_CHAT_LISTS = `if 'add' = any(p_memberships) then
      insert into user_chats (user_id, chat_id, joined_at)
        select p_users[t.i], p_chat_ids[t.i], p_created_ats[t.i] from unnest(v_i) as t(i)
        where p_memberships[t.i] = 'add'
        on conflict (user_id, chat_id) do nothing;
    end if;
    for v_k in
      select k from generate_subscripts(p_memberships, 1) as k where p_memberships[k] = 'remove'
    loop
      delete from user_chats uc
        where uc.user_id = p_users[v_k] and uc.chat_id = p_chat_ids[v_k]${onShard('uc.user_id')};
    end loop;`;
  return `
  create or replace function chat_append_events(${USER_STEP_ARGS})
  returns table (i int, seq int8)
  language plpgsql
  -- Plan each statement once per connection (the arrays do not change the best plan), and
  -- by key lookups: a connection's first call may come while the tables are nearly empty,
  -- when a scan looks cheapest, and the plan would stay with it as the tables grow.
  set plan_cache_mode = force_generic_plan
  set enable_seqscan = off
  as $fn$
  #variable_conflict use_column
  declare
    v_locked int;
    v_swept jsonb;  -- node id -> swept_upto, for the few nodes a sweeper took over${
      onShards
        ? `
    v_i int8[];     -- positions of the events appended now, and their seqs
    v_seq int8[];
    v_k int;        -- an event of a user leaving a chat`
        : ''
    }
  begin
    -- p_distinct_users: the users of the batch, distinct and sorted (the lock order).${
      onShards
        ? `
    -- On Citus the locks are taken on the users' rows (key-locks.ts): new users first. Two
    -- steps creating the same new users may deadlock; one fails and its batch is retried.
    ${CREATE_MISSING_USERS}
    ${lockKeysSql('user', 'p_distinct_users', true)};`
        : `
    ${lockKeysSql('user', 'p_distinct_users')};
    ${CREATE_MISSING_USERS}`
    }

    -- Read after the locks: a sweeper sets swept_upto before its own user step takes them.
    select coalesce(jsonb_object_agg(node_id, swept_upto), '{}') into v_swept
      from fanout_marks where swept_upto is not null;

    ${onShards ? CITUS_APPEND : PLAIN_APPEND}

    -- Chat lists: only chat changes carry a membership, and only for the events appended now.
    ${onShards ? CITUS_CHAT_LISTS : PLAIN_CHAT_LISTS}
  end
  $fn$`;
}

/** The plain PostgreSQL version (migration 0007). */
export const USER_STEP_FUNCTION = userStepFunction(false);
