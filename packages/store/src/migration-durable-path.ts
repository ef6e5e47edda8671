/**
 * Migration 0007_durable_path: the data model keyed by user or by chat, and the send path of
 * single-key steps (docs/durable-path.md).
 *
 * - messages: ids ordered within their chat (no global identity), primary key (chat_id, id),
 *   idempotency per (chat, sender, client_msg_id); chat changes are rows of kind 'chat'; the
 *   storing node (`origin`) owes their fan-out.
 * - inbox: self-contained events (sender, body, attachments copied in), no foreign key to
 *   messages; one row per (user, chat, message) at most, which makes fan-out idempotent.
 * - receipts: per-member watermarks (`chat_members.delivered_upto` / `read_upto`) instead of a
 *   row per message; `receipt_marks` keeps, per user, the watermarks they are to be told.
 * - user_chats: "my chats" keyed by user; fanout_marks: each node's fan-out promise.
 *
 * Existing rows are carried over: inbox events get their message's content, delivered
 * receipts become watermarks, memberships are copied to user_chats.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { CHAT_STEP_FUNCTION } from './chat-step';
import { USER_STEP_FUNCTION } from './user-step';

export const durablePathMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const run = (statement: string): Promise<unknown> => sql.raw(statement).execute(db);

    // Messages keyed by chat.
    await run('alter table inbox drop constraint if exists inbox_message_id_fkey');
    await run('alter table receipts drop constraint if exists receipts_message_id_fkey');
    await run('alter table messages alter column id drop identity if exists');
    // The chat step checks the chat under its lock: a per-row foreign key check on top
    // only costs (and a distributed engine would need chats and messages co-located for it).
    await run('alter table messages drop constraint if exists messages_chat_id_fkey');
    await run('alter table messages drop constraint messages_pkey');
    await run('alter table messages add primary key (chat_id, id)');
    await run('drop index if exists messages_chat_id_idx');
    await run('alter table messages drop constraint messages_sender_client_msg_uq');
    await run(
      'create unique index messages_client_msg_uq on messages (chat_id, sender_id, client_msg_id)',
    );
    await run('alter table messages alter column client_msg_id drop not null');
    await run(`
      alter table messages
        add column kind text not null default 'message' check (kind in ('message', 'chat')),
        add column payload jsonb,
        add column recipients text[],
        add column origin text`);

    // Self-contained inbox events.
    await run(`
      alter table inbox
        add column sender_id text,
        add column body text,
        add column attachments jsonb not null default '[]'::jsonb`);
    await run(`
      update inbox i set sender_id = m.sender_id, body = m.body, attachments = m.attachments
      from messages m where m.id = i.message_id and i.kind = 'message'`);
    await run('drop index if exists inbox_message_idx');
    // Events are appended in time order: a block range index finds the expired ones for
    // retention at a fraction of a B-tree's cost per append.
    await run('drop index if exists inbox_created_idx');
    await run('create index inbox_created_brin on inbox using brin (created_at)');
    await run(`
      create unique index inbox_message_uq on inbox (user_id, chat_id, message_id)
      where kind in ('message', 'chat')`);

    // Receipts as watermarks.
    await run('alter table chat_members add column delivered_upto bigint not null default 0');
    await run(`
      update chat_members cm set delivered_upto = greatest(cm.read_upto, d.upto)
      from (
        select m.chat_id, r.user_id, max(m.id) as upto
        from receipts r join messages m on m.id = r.message_id
        where r.delivered_at is not null
        group by m.chat_id, r.user_id
      ) d
      where d.chat_id = cm.chat_id and d.user_id = cm.user_id`);
    await run(
      'update chat_members set delivered_upto = read_upto where delivered_upto < read_upto',
    );
    await run('drop table receipts');
    // Devices that did not announce the `receipt-marks` feature still get receipt events.
    await run('alter table devices add column receipt_events boolean not null default true');
    await run(`
      create table receipt_marks (
        user_id text not null,
        chat_id text not null,
        reader text not null,
        delivered_upto bigint not null default 0,
        read_upto bigint not null default 0,
        updated_at bigint not null,
        primary key (user_id, chat_id, reader)
      )`);
    await run('create index receipt_marks_updated_idx on receipt_marks (updated_at)');

    // Activity of chats without reading their messages.
    await run('alter table chats add column last_message_at bigint');
    await run(`
      update chats c set last_message_at = m.at
      from (select chat_id, max(created_at) as at from messages group by chat_id) m
      where m.chat_id = c.id`);

    // "My chats", keyed by user.
    await run(`
      create table user_chats (
        user_id text not null,
        chat_id text not null,
        joined_at bigint not null,
        primary key (user_id, chat_id)
      )`);
    await run(`
      insert into user_chats (user_id, chat_id, joined_at)
      select user_id, chat_id, joined_at from chat_members`);
    await run('drop index if exists chat_members_user_idx');

    await run(`
      create table fanout_marks (
        node_id text primary key,
        upto bigint not null,
        heartbeat_at bigint not null,
        swept_upto bigint
      )`);

    await run('drop function if exists chat_send_batch');
    await run(CHAT_STEP_FUNCTION);
    await run(USER_STEP_FUNCTION);
  },
  async down(): Promise<void> {
    throw new Error('0007_durable_path cannot be undone: restore a backup instead');
  },
};
