/**
 * Who may fetch an attachment: members of a chat in which a message carries its key.
 *
 * The `message_attachments` table (migration 0003_media) maps keys to chats. A trigger on
 * `messages` fills it in the same transaction as the message, so the group-committed send path
 * is untouched and text messages pay nothing (the trigger's WHEN skips rows without
 * attachments). Rows outlive deleted message bodies, so a recipient can still fetch media of a
 * message that was already delivered; they go when the object may (attachment-release.ts).
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { recordFetch } from './attachment-fetches';
import { toChatError } from './errors';
import type { Database } from './schema';
import { EngineRouters, acrossShards, onShard, perShard } from './shard-router';

/** `member`: the user is in a chat that has the key; `not-member`: the key is in chats, not theirs; `unknown`: in no message. */
export type AttachmentAccess = 'member' | 'not-member' | 'unknown';

export interface AttachmentStore {
  /** Whether `userId` may fetch the object `key` (see AttachmentAccess). */
  access(userId: string, key: string): Promise<AttachmentAccess>;
  /**
   * Notes that this device was handed a download URL for `key`: once every recipient device
   * has been, the object may go (attachment-release.ts).
   */
  recordFetch(userId: string, deviceId: string, key: string, now: number): Promise<void>;
}

/**
 * @example
 * const attachments = new PgAttachmentStore(db);
 * if ((await attachments.access('bob', key)) !== 'member') throw ...;
 */
export class PgAttachmentStore implements AttachmentStore {
  private readonly routers: EngineRouters;

  constructor(private readonly db: Kysely<Database>) {
    this.routers = EngineRouters.of(db);
  }

  async access(userId: string, key: string): Promise<AttachmentAccess> {
    try {
      // The user's chats from their shard, then the key among those chats, one chat shard per
      // statement (membership from chat_members, which a removal changes first). Only a refusal
      // looks the key up in every chat, to tell an unknown key from another chat's.
      const { chats } = await this.routers.get();
      const { rows: mine } = await sql<{ chat_id: string }>`
        select chat_id from user_chats where user_id = ${userId}`.execute(this.db);
      const found = await perShard(
        chats,
        mine.map((m) => m.chat_id),
        (id) => id,
        async (ids, keys) => {
          const { rows } = await sql<{ member: boolean }>`
            select exists (
              select 1 from message_attachments a
              join chat_members m on m.chat_id = a.chat_id and m.user_id = ${userId}
              where a.key = ${key} and a.chat_id = any(${ids}::text[])${onShard('a.chat_id', keys)}
                ${onShard('m.chat_id', keys)}) as member`.execute(this.db);
          return rows.map((r) => r.member);
        },
      );
      if (found.includes(true)) return 'member';
      const known = await acrossShards(this.db, async (tx) => {
        const { rows } = await sql<{ known: boolean }>`
          select exists (select 1 from message_attachments where key = ${key}) as known`.execute(
          tx,
        );
        return rows[0]?.known === true;
      });
      return known ? 'not-member' : 'unknown';
    } catch (err) {
      throw toChatError(err);
    }
  }

  async recordFetch(userId: string, deviceId: string, key: string, now: number): Promise<void> {
    try {
      await recordFetch(this.db, userId, deviceId, key, now);
    } catch (err) {
      throw toChatError(err);
    }
  }
}

/** Migration 0003_media: the key -> chat index of attachments, filled by a trigger. */
export const mediaMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('message_attachments')
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('chat_id', 'text', (c) => c.notNull().references('chats.id').onDelete('cascade'))
      // The first message in this chat that carried the key; no foreign key, so the row
      // survives the message's deletion once it has been delivered.
      .addColumn('message_id', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('message_attachments_pk', ['key', 'chat_id'])
      .execute();
    await db.schema
      .createIndex('message_attachments_created_idx')
      .on('message_attachments')
      .column('created_at')
      .execute();
    await sql`
      create function chat_index_attachments() returns trigger language plpgsql as $$
      begin
        insert into message_attachments (key, chat_id, message_id, created_at)
        select a->>'key', new.chat_id, new.id, new.created_at
        from jsonb_array_elements(new.attachments) as a
        where a->>'key' is not null
        on conflict (key, chat_id) do nothing;
        return null;
      end
      $$`.execute(db);
    await sql`
      create trigger messages_index_attachments
      after insert on messages
      for each row when (new.attachments <> '[]'::jsonb)
      execute function chat_index_attachments()`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`drop trigger if exists messages_index_attachments on messages`.execute(db);
    await sql`drop function if exists chat_index_attachments()`.execute(db);
    await db.schema.dropTable('message_attachments').ifExists().execute();
  },
};
