/**
 * Which recipient devices fetched an attachment (issue 16, item 10). An attachment object is
 * kept until every recipient device has asked for a download URL, or a grace period after the
 * message reached every recipient, and never past retention (attachment-release.ts): a
 * recipient that comes online late acks and reads before it downloads, and must still find it.
 *
 * `attachment_fetches` is user-keyed (distributed by user_id on Citus, co-located with
 * `devices`): recording a fetch touches the fetching user's shard only, and the release check
 * reads one user shard per statement. `message_attachments.delivered_at` (chat-keyed) notes when
 * the cleanup job first saw the key's message delivered to every recipient.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { detectEngine } from './citus';
import type { Database } from './schema';

/** Notes that `deviceId` of `userId` was handed a download URL for `key` (idempotent). */
export async function recordFetch(
  db: Kysely<Database>,
  userId: string,
  deviceId: string,
  key: string,
  now: number,
): Promise<void> {
  await sql`
    insert into attachment_fetches (user_id, key, device_id, fetched_at)
    values (${userId}, ${key}, ${deviceId}, ${now}::int8)
    on conflict (user_id, key, device_id) do nothing`.execute(db);
}

/** Migration 0012_attachment_fetches. */
export const attachmentFetchesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('attachment_fetches')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('fetched_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('attachment_fetches_pk', ['user_id', 'key', 'device_id'])
      .execute();
    // Retention drops fetch rows by age (at most one retention period after the key's message).
    await db.schema
      .createIndex('attachment_fetches_fetched_idx')
      .on('attachment_fetches')
      .column('fetched_at')
      .execute();
    await db.schema.alterTable('message_attachments').addColumn('delivered_at', 'bigint').execute();
    if ((await detectEngine(db)) === 'citus') {
      await sql`select create_distributed_table('attachment_fetches', 'user_id', colocate_with => 'users')`.execute(
        db,
      );
    }
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('message_attachments').dropColumn('delivered_at').execute();
    await db.schema.dropTable('attachment_fetches').ifExists().execute();
  },
};
