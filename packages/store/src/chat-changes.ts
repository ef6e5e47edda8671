/**
 * The chat steps of chat changes: creating a chat, adding and removing members. Each is one
 * transaction on the chat's own rows (chats, chat_members, messages), holding the chat's lock
 * (key-locks.ts) so that sends and other changes of the chat take turns with it; the change is
 * stored as a row of kind 'chat' in messages (it gets the chat's next id), and its fan-out to
 * the members' inboxes (and chat lists) follows like a message's.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import type { StoredChatChange } from './fanout-events';
import { lockKeys } from './key-locks';
import type { Database } from './schema';

/** Inserts the chat, its members (the creator an admin) and its `created` change. */
export async function storeNewChat(
  tx: Transaction<Database>,
  creatorId: string,
  members: readonly string[],
  name: string | null,
  now: number,
  origin: string,
): Promise<StoredChatChange> {
  const chatId = randomUUID();
  await tx
    .insertInto('chats')
    .values({ id: chatId, name, created_by: creatorId, created_at: now })
    .execute();
  await sql`
    insert into chat_members (chat_id, user_id, joined_at, is_admin)
    select ${chatId}, u, ${now}, u = ${creatorId} from unnest(${[...members]}::text[]) as t(u)`.execute(
    tx,
  );
  return storeChange(
    tx,
    { chatId, change: 'created', members, by: creatorId, recipients: members, ts: now },
    origin,
  );
}

/**
 * Locks the chat against sends and other changes and returns its members (in join order)
 * with their admin flags. NOT_FOUND for an unknown chat, NOT_MEMBER when `by` is not a member.
 */
export async function lockChat(
  tx: Transaction<Database>,
  chatId: string,
  by: string,
): Promise<Map<string, boolean>> {
  await lockKeys(tx, 'chat', [chatId], 'exclusive');
  const { rows } = await sql<{ id: string }>`
    select id from chats where id = ${chatId}`.execute(tx);
  if (rows.length === 0) throw new ChatError('NOT_FOUND', 'no such chat', { chatId });
  const members = await tx
    .selectFrom('chat_members')
    .select(['user_id', 'is_admin'])
    .where('chat_id', '=', chatId)
    .orderBy('joined_at')
    .orderBy('user_id')
    .execute();
  const current = new Map<string, boolean>(
    members.map((m): [string, boolean] => [m.user_id, m.is_admin]),
  );
  if (!current.has(by)) throw new ChatError('NOT_MEMBER', 'not a member of this chat', { chatId });
  return current;
}

/**
 * Stores a change as the chat's next message row (the chat must be locked): its id follows
 * the chat's highest, like a message's (see chat-step.ts).
 */
export async function storeChange(
  tx: Transaction<Database>,
  change: Omit<StoredChatChange, 'messageId'>,
  origin: string,
): Promise<StoredChatChange> {
  const payload =
    change.admin === true
      ? { change: change.change, members: change.members, by: change.by, admin: true }
      : { change: change.change, members: change.members, by: change.by };
  const { rows } = await sql<{ id: string }>`
    insert into messages (chat_id, id, kind, sender_id, client_msg_id, body, attachments,
        created_at, payload, recipients, origin)
    select ${change.chatId}, greatest(
        coalesce((select max(m.id) from messages m where m.chat_id = ${change.chatId}), 0),
        ${change.ts}::int8 * 1000 - 1) + 1,
      'chat', ${change.by}, null, null, '[]'::jsonb, ${change.ts}, ${JSON.stringify(payload)}::jsonb,
      ${[...change.recipients]}::text[], ${origin}
    returning id::text as id`.execute(tx);
  return { ...change, messageId: rows[0]!.id };
}
