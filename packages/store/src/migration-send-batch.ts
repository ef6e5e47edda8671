/**
 * Migration 0006_send_batch_function: a send batch in one PL/pgSQL function, one transaction
 * over every key of the batch. Migration 0007 (migration-durable-path.ts) drops the function
 * and replaces it with the chat step and the user step; this stays because a migration that
 * has shipped never changes.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/**
 * Migration 0006_send_batch_function. Membership is read after the chats are locked FOR KEY
 * SHARE (what the messages.chat_id foreign key takes anyway): it stays as read until commit,
 * because membership changes lock the chat FOR UPDATE, while concurrent sends to one chat do not
 * wait for each other. A (sender, client_msg_id) stored before, or by a concurrent transaction
 * that committed first, is not inserted again but answered as a dup, and so is a repeat of it
 * later in the same batch. Each user's new events are numbered from their locked next_seq in
 * batch order.
 */
export const sendBatchMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      create or replace function chat_send_batch(
        p_chat_ids text[], p_sender_ids text[], p_client_msg_ids text[], p_bodies text[],
        p_attachments jsonb[], p_created_ats int8[])
      returns table (i int, status text, message_id int8, ts int8, user_id text, seq int8)
      language plpgsql
      -- Plan each statement once per connection: the batch's arrays do not change the best plan,
      -- and planning them again on every call cost more than running them.
      set plan_cache_mode = force_generic_plan
      as $fn$
      #variable_conflict use_column
      declare
        v_members jsonb;      -- chat id -> its members (user ids, sorted), for chats that exist
        v_primaries int[];    -- valid sends, the first of each (sender, client_msg_id)
        v_recipients text[];  -- locked users, sorted, and their next_seq
        v_next_seqs int8[];
        v_new_i int[];        -- primaries inserted now, and their message ids
        v_new_id int8[];
        v_dup_i int[];        -- primaries stored before, with the stored id and ts
        v_dup_id int8[];
        v_dup_ts int8[];
        v_ev_i int[];         -- one event per recipient of each new message
        v_ev_user text[];
        v_ev_seq int8[];
      begin
        perform from chats where id = any(p_chat_ids) order by id for key share;
        select coalesce(jsonb_object_agg(c.id, array(
            select m.user_id from chat_members m where m.chat_id = c.id order by m.user_id)), '{}')
          into v_members
          from chats c where c.id = any(p_chat_ids);

        select array_agg(s.i order by s.i) into v_primaries
          from (
            select t.i, row_number() over (partition by t.sender, t.client order by t.i) as n
            from unnest(p_chat_ids, p_sender_ids, p_client_msg_ids)
              with ordinality as t(chat, sender, client, i)
            where (v_members -> t.chat) ? t.sender
          ) s
          where s.n = 1;

        if v_primaries is not null then
          select array_agg(distinct r.user_id) into v_recipients
            from unnest(v_primaries) as p(i),
              jsonb_array_elements_text(v_members -> p_chat_ids[p.i]) as r(user_id);
          insert into users (id)
            select u.id from unnest(v_recipients) as u(id) order by u.id
            on conflict (id) do nothing;
          select array_agg(l.id order by l.id), array_agg(l.next_seq order by l.id)
            into v_recipients, v_next_seqs
            from (
              select id, next_seq from users where id = any(v_recipients) order by id for update
            ) l;

          with ins as (
            insert into messages (chat_id, sender_id, client_msg_id, body, attachments, created_at)
              select p_chat_ids[p.i], p_sender_ids[p.i], p_client_msg_ids[p.i], p_bodies[p.i],
                p_attachments[p.i], p_created_ats[p.i]
              from unnest(v_primaries) as p(i) order by p.i
              on conflict (sender_id, client_msg_id) do nothing
              returning id, sender_id, client_msg_id
          )
          select array_agg(p.i order by p.i), array_agg(ins.id order by p.i)
            into v_new_i, v_new_id
            from ins join unnest(v_primaries) as p(i)
              on ins.sender_id = p_sender_ids[p.i] and ins.client_msg_id = p_client_msg_ids[p.i];

          select array_agg(p.i), array_agg(m.id), array_agg(m.created_at)
            into v_dup_i, v_dup_id, v_dup_ts
            from unnest(v_primaries) as p(i)
            join messages m
              on m.sender_id = p_sender_ids[p.i] and m.client_msg_id = p_client_msg_ids[p.i]
            where p.i <> all(coalesce(v_new_i, '{}'));
          if coalesce(cardinality(v_new_i), 0) + coalesce(cardinality(v_dup_i), 0)
              <> cardinality(v_primaries) then
            raise exception 'a send was neither inserted nor found';
          end if;

          with ev as (
            select n.i, n.id, r.user_id,
              l.next_seq + row_number() over (partition by r.user_id order by n.i) - 1 as seq
            from unnest(v_new_i, v_new_id) as n(i, id)
            cross join jsonb_array_elements_text(v_members -> p_chat_ids[n.i]) as r(user_id)
            join unnest(v_recipients, v_next_seqs) as l(user_id, next_seq)
              on l.user_id = r.user_id
          ),
          bump as (
            update users u set next_seq = b.next_seq
            from (select ev.user_id, max(ev.seq) + 1 as next_seq from ev group by ev.user_id) b
            -- The redundant any() makes the planner look the users up by key, never scan them.
            where u.id = b.user_id and u.id = any(v_recipients)
          ),
          inserted as (
            insert into inbox (user_id, seq, kind, chat_id, message_id, payload, created_at)
              select ev.user_id, ev.seq, 'message', p_chat_ids[ev.i], ev.id, null,
                p_created_ats[ev.i]
              from ev
          )
          select array_agg(ev.i), array_agg(ev.user_id), array_agg(ev.seq)
            into v_ev_i, v_ev_user, v_ev_seq
            from ev;
        end if;

        return query
          with sends as (
            select t.i::int as i, t.chat, (v_members -> t.chat) ? t.sender as valid,
              min(t.i) filter (where (v_members -> t.chat) ? t.sender)
                over (partition by t.sender, t.client) as first
            from unnest(p_chat_ids, p_sender_ids, p_client_msg_ids)
              with ordinality as t(chat, sender, client, i)
          ),
          stored as (
            select n.i, n.id, p_created_ats[n.i] as ts, true as fresh
              from unnest(v_new_i, v_new_id) as n(i, id)
            union all
            select d.i, d.id, d.ts, false from unnest(v_dup_i, v_dup_id, v_dup_ts) as d(i, id, ts)
          )
          select s.i,
            case
              when v_members -> s.chat is null then 'NOT_FOUND'
              when not s.valid then 'NOT_MEMBER'
              when st.fresh and st.i = s.i then 'new'
              else 'dup'
            end,
            st.id, st.ts, e.user_id, e.seq
          from sends s
          left join stored st on s.valid and st.i = s.first
          left join unnest(v_ev_i, v_ev_user, v_ev_seq) as e(i, user_id, seq)
            on st.fresh and st.i = s.i and e.i = s.i
          order by s.i, e.user_id;
      end
      $fn$`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`drop function if exists chat_send_batch`.execute(db);
  },
};
