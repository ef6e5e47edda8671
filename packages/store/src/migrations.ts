/**
 * Schema migrations, shipped in code (no migration folder to locate at run time), applied with
 * kysely's Migrator. Never edit a migration that has shipped; add a new one.
 */
import { backoffCeiling } from '@chat/protocol';
import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider, MigrationResultSet } from 'kysely';
import { attachmentFetchesMigration } from './attachment-fetches';
import { mediaMigration } from './attachment-store';
import { messageContentMigration, retentionMigration } from './retention-store';
import type { Database } from './schema';
import { durablePathMigration } from './migration-durable-path';
import {
  citusCoordinatorLocksMigration,
  citusLocalStepsMigration,
  distributeMigration,
} from './migration-distribute';
import { blocksMigration } from './migration-blocks';
import { pushMigration } from './migration-push';
import { sendBatchMigration } from './migration-send-batch';
import { expiredSeqMigration } from './migration-expired-seq';
import { storeEpochMigration } from './store-epoch';

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('next_seq', 'bigint', (c) => c.notNull().defaultTo(1))
      .addColumn('last_seen', 'bigint')
      .execute();

    await db.schema
      .createTable('devices')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('acked_seq', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('created_seq', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('last_active', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('devices_pk', ['user_id', 'device_id'])
      .execute();

    await db.schema
      .createTable('chats')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('chat_members')
      .addColumn('chat_id', 'text', (c) => c.notNull().references('chats.id').onDelete('cascade'))
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('joined_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('chat_members_pk', ['chat_id', 'user_id'])
      .execute();
    await db.schema
      .createIndex('chat_members_user_idx')
      .on('chat_members')
      .columns(['user_id', 'chat_id'])
      .execute();

    await db.schema
      .createTable('messages')
      .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
      .addColumn('chat_id', 'text', (c) => c.notNull().references('chats.id').onDelete('cascade'))
      .addColumn('sender_id', 'text', (c) => c.notNull())
      .addColumn('client_msg_id', 'text', (c) => c.notNull())
      .addColumn('body', 'text')
      .addColumn('attachments', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('messages_sender_client_msg_uq', ['sender_id', 'client_msg_id'])
      .execute();

    await db.schema
      .createTable('inbox')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) =>
        c.notNull().check(sql`kind in ('message', 'chat', 'receipt')`),
      )
      .addColumn('chat_id', 'text', (c) => c.notNull())
      .addColumn('message_id', 'bigint', (c) => c.references('messages.id').onDelete('cascade'))
      .addColumn('payload', 'jsonb')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('inbox_pk', ['user_id', 'seq'])
      .execute();
    // For the FK cascade and for "has every recipient got this message" checks.
    await db.schema.createIndex('inbox_message_idx').on('inbox').column('message_id').execute();

    await db.schema
      .createTable('receipts')
      .addColumn('message_id', 'bigint', (c) =>
        c.notNull().references('messages.id').onDelete('cascade'),
      )
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('delivered_at', 'bigint')
      .addColumn('read_at', 'bigint')
      .addPrimaryKeyConstraint('receipts_pk', ['message_id', 'user_id'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of [
      'receipts',
      'inbox',
      'messages',
      'chat_members',
      'chats',
      'devices',
      'users',
    ]) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};

/**
 * Issue 7: admins (the creator is one from the start), each member's read position, and an
 * index for "messages of a chat by id" (read ranges, a chat's latest message).
 */
const presenceReceiptsAdmin: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('chat_members')
      .addColumn('is_admin', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('read_upto', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute();
    await sql`
      update chat_members m set is_admin = true
      from chats c where c.id = m.chat_id and c.created_by = m.user_id`.execute(db);
    await db.schema
      .createIndex('messages_chat_id_idx')
      .on('messages')
      .columns(['chat_id', 'id'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('messages_chat_id_idx').ifExists().execute();
    await db.schema.alterTable('chat_members').dropColumn('is_admin').execute();
    await db.schema.alterTable('chat_members').dropColumn('read_upto').execute();
  },
};

/** Every migration, by name; names sort in application order. */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial': initial,
  '0002_presence_receipts_admin': presenceReceiptsAdmin,
  '0003_media': mediaMigration,
  '0004_retention': retentionMigration,
  '0005_message_content_removed': messageContentMigration,
  '0006_send_batch_function': sendBatchMigration,
  '0007_durable_path': durablePathMigration,
  '0008_distribute': distributeMigration,
  '0009_store_epoch': storeEpochMigration,
  '0010_citus_local_steps': citusLocalStepsMigration,
  '0011_blocks': blocksMigration,
  '0012_attachment_fetches': attachmentFetchesMigration,
  '0014_push': pushMigration,
  '0015_expired_seq': expiredSeqMigration,
  '0016_citus_coordinator_locks': citusCoordinatorLocksMigration,
});

const provider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...migrations }),
};

/** Arbitrary constant: the advisory lock that serializes migrate() across processes. */
export const MIGRATE_LOCK_ID = 7_310_442_901;
/** How long a process waits for another one's migrations (a fresh Citus schema takes a while). */
const MIGRATE_LOCK_WAIT_MS = 300_000;
/** Pause between tries for the migration lock: 50 ms, doubling, at most 1 s (no jitter). */
const MIGRATE_LOCK_POLL = { baseMs: 50, maxMs: 1_000 } as const;

/**
 * Takes the migration lock, polling with short statements rather than one blocking
 * pg_advisory_lock: a wait in one statement is cut by the pool's query timeout (10 s by
 * default), and nodes started together on a fresh database would exit while the first one
 * still migrates.
 */
async function takeMigrateLock(conn: Kysely<Database>): Promise<void> {
  const deadline = Date.now() + MIGRATE_LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    const { rows } = await sql<{ locked: boolean }>`
      select pg_try_advisory_lock(${MIGRATE_LOCK_ID}) as locked`.execute(conn);
    if (rows[0]?.locked === true) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `another process has held the migration lock for ${MIGRATE_LOCK_WAIT_MS} ms: is a migration stuck?`,
      );
    }
    const delayMs = backoffCeiling(attempt, MIGRATE_LOCK_POLL);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/**
 * Brings the schema up to date. Safe to run from several nodes at once: a session-level
 * advisory lock, taken before kysely creates its own bookkeeping tables, lets one run at a
 * time, and the others find nothing left to do.
 *
 * @example
 * const db = createDatabase(process.env.DATABASE_URL);
 * await migrate(db);
 */
export async function migrate(db: Kysely<Database>): Promise<MigrationResultSet> {
  return db.connection().execute(async (conn) => {
    await takeMigrateLock(conn);
    // Migrations may touch every shard on Citus, also on a pool whose connections refuse
    // that (SINGLE_SHARD_SETTINGS); RESET restores the connection's own value afterwards.
    await sql`set citus.multi_task_query_log_level = 'off'`.execute(conn);
    try {
      const result = await new Migrator({ db: conn, provider }).migrateToLatest();
      if (result.error !== undefined) throw result.error;
      return result;
    } finally {
      await sql`reset citus.multi_task_query_log_level`.execute(conn);
      await sql`select pg_advisory_unlock(${MIGRATE_LOCK_ID})`.execute(conn);
    }
  });
}
