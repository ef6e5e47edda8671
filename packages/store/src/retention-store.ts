/**
 * Retention (issue 8): the statements of the cleanup job. Each call is one short statement on
 * at most `limit` rows (its own transaction), so the job never holds locks for long; rows it
 * selects are locked with SKIP LOCKED, so it never waits for a send or a cursor write (and
 * they wait at most for one batch).
 *
 * What goes, and when:
 * - a message's text, once its fan-out is done (it is older than every node's fan-out mark:
 *   its recipients' inboxes have their own copies) and the delivered grace period passed. The
 *   row stays, with its attachments and what read receipts need (id, chat, sender, time), until
 *   every recipient has read it (their read watermark passed it; members who joined after it
 *   do not count), then goes, and attachment objects no other message carries go with it. A
 *   chat change's row goes once its fan-out is done and the grace period passed;
 * - everything older than the retention period: inbox events, messages (emptied or not),
 *   attachment index rows, receipt watermarks kept for away devices;
 * - devices not active for the retention period (a tombstone remembers them, so a device that
 *   comes back is told it starts fresh);
 * - attachment objects whose key no message carries any more: queued in `media_deletions` in
 *   the statement that emptied or deleted the last such message, and removed from object
 *   storage by the job afterwards (a crash in between leaves the queue row, so the object is
 *   removed later).
 *
 * Deleting events or devices can remove the newest seq a user had: those statements raise
 * users.next_seq past it, so a seq is never given out twice (user-step.ts).
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { toChatError } from './errors';
import type { Database } from './schema';

/** One window of the delivered-messages scan. */
export interface DeliveredBatch {
  /** Where the window ended; pass it as `after` to continue, null when none was left. */
  readonly lastId: string | null;
  /** Messages whose text was removed; their rows stay for read receipts and attachments. */
  readonly emptied: number;
  /** Messages deleted whole: read by every recipient (and chat changes, fanned out). */
  readonly deleted: number;
  /** Attachment keys queued for object deletion. */
  readonly keys: number;
}

export interface ExpiredMessages {
  readonly messages: number;
  readonly keys: number;
}

export interface ExpiredDevices {
  readonly devices: number;
  /** Inbox events freed because an expired device's cursor no longer holds them. */
  readonly events: number;
}

/** The cleanup job's view of the store (one implementation, Postgres; the job tests use it). */
export interface RetentionStore {
  /**
   * Among the `limit` messages after position `after` ('0' for the start; positions follow
   * (created_at, chat, id)) created before `createdBefore` and fanned out: empties their text,
   * and deletes those read by every recipient (and chat changes).
   */
  cleanDelivered(
    after: string,
    createdBefore: number,
    now: number,
    limit: number,
  ): Promise<DeliveredBatch>;
  deleteExpiredInbox(createdBefore: number, limit: number): Promise<number>;
  deleteExpiredMessages(createdBefore: number, limit: number): Promise<ExpiredMessages>;
  deleteExpiredAttachmentIndex(createdBefore: number, limit: number): Promise<number>;
  expireDevices(activeBefore: number, now: number, limit: number): Promise<ExpiredDevices>;
  pruneTombstones(expiredBefore: number, limit: number): Promise<number>;
  /** Receipt watermarks kept for away devices that have not moved since `before`. */
  deleteExpiredReceiptMarks(before: number, limit: number): Promise<number>;
  /** Keys queued for object deletion, oldest first. */
  queuedObjectKeys(limit: number): Promise<string[]>;
  /** Drops keys from the queue once their objects are gone. */
  dequeueObjectKeys(keys: readonly string[]): Promise<void>;
}

/**
 * Keys of `released` (messages deleted or emptied, with their attachments as they were) that no
 * other message carries: their objects can go.
 */
const ORPHAN_KEYS = sql`
  keys as (
    select distinct a->>'key' as key
    from released, jsonb_array_elements(released.attachments) as a
    where a->>'key' is not null
  ),
  orphans as (
    select k.key from keys k
    where not exists (
      select 1 from messages m
      where m.attachments <> '[]'::jsonb
        and m.attachments @> jsonb_build_array(jsonb_build_object('key', k.key))
        and (m.chat_id, m.id) not in (select chat_id, id from released))
  ),
  unindexed as (
    delete from message_attachments ma using orphans o where ma.key = o.key
  ),
  queued as (
    insert into media_deletions (key) select key from orphans
    on conflict (key) do nothing
    returning key
  )`;

/** A cleanDelivered position: '0' (the start) or `createdAt:chatId:id`. */
function parsePosition(position: string): { createdAt: number; chatId: string; id: string } {
  const first = position.indexOf(':');
  const last = position.lastIndexOf(':');
  if (first < 0 || first === last) return { createdAt: -1, chatId: '', id: '0' };
  return {
    createdAt: Number(position.slice(0, first)),
    chatId: position.slice(first + 1, last),
    id: position.slice(last + 1),
  };
}

/**
 * @example
 * const retention = new PgRetentionStore(db);
 * const gone = await retention.deleteExpiredInbox(now - 30 * DAY, 1000);
 */
export class PgRetentionStore implements RetentionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async cleanDelivered(
    after: string,
    createdBefore: number,
    now: number,
    limit: number,
  ): Promise<DeliveredBatch> {
    // A window in (created_at, chat, id) order, so messages still waiting for delivery or for
    // a reader are passed over once per pass instead of being looked at again by every batch.
    // Only rows that change are locked: an emptied message still waiting for a reader is left
    // alone. Nothing is touched before every node's fan-out passed it.
    const from = parsePosition(after);
    return this.run(async () => {
      const { rows } = await sql<{
        last: string | null;
        emptied: string;
        deleted: string;
        keys: string;
      }>`
        with fanned as (
          select least(${createdBefore}::int8, coalesce(min(upto), ${createdBefore}::int8)) as before
          from fanout_marks
        ),
        win as (
          select created_at, chat_id, id from messages
          where (created_at, chat_id, id) > (${from.createdAt}::int8, ${from.chatId}, ${from.id}::int8)
            and created_at < (select before from fanned)
          order by created_at, chat_id, id
          limit ${limit}
        ),
        victims as (
          select m.chat_id, m.id, m.attachments, m.kind = 'chat' or r.read_by_all as gone
          from messages m
          cross join lateral (
            -- The members a read receipt is for have all read past it.
            select not exists (
                select 1 from chat_members cm
                where cm.chat_id = m.chat_id and cm.user_id <> m.sender_id
                  and cm.joined_at <= m.created_at and cm.read_upto < m.id) as read_by_all
          ) r
          where (m.chat_id, m.id) in (select chat_id, id from win)
            and (m.kind = 'chat' or m.content_removed_at is null or r.read_by_all)
          for update of m skip locked
        ),
        gone as (
          delete from messages m using victims v
          where m.chat_id = v.chat_id and m.id = v.id and v.gone
          returning m.chat_id, m.id, v.attachments
        ),
        -- The text goes; attachments stay until the row does, so that a device of a recipient
        -- that comes online later can still fetch them.
        emptied as (
          update messages m
          set body = null, content_removed_at = ${now}::int8
          from victims v where m.chat_id = v.chat_id and m.id = v.id and not v.gone
          returning m.chat_id, m.id
        ),
        released as (select chat_id, id, attachments from gone),
        ${ORPHAN_KEYS}
        select (select created_at || ':' || chat_id || ':' || id from win
                order by created_at desc, chat_id desc, id desc limit 1) as last,
               (select count(*) from emptied) as emptied,
               (select count(*) from gone) as deleted,
               (select count(*) from queued) as keys`.execute(this.db);
      const row = rows[0];
      return {
        lastId: row?.last ?? null,
        emptied: Number(row?.emptied ?? 0),
        deleted: Number(row?.deleted ?? 0),
        keys: Number(row?.keys ?? 0),
      };
    });
  }

  async deleteExpiredInbox(createdBefore: number, limit: number): Promise<number> {
    return this.run(async () => {
      const { rows } = await sql<{ n: string }>`
        with gone as (
          delete from inbox where ctid = any(array(
            select ctid from inbox where created_at < ${createdBefore}
            limit ${limit}
            for update skip locked))
          returning user_id, seq
        ),
        floors as (
          update users u set next_seq = greatest(u.next_seq, g.seq + 1)
          from (select user_id, max(seq) as seq from gone group by user_id) g
          where u.id = g.user_id
        )
        select count(*) as n from gone`.execute(this.db);
      return Number(rows[0]?.n ?? 0);
    });
  }

  async deleteExpiredMessages(createdBefore: number, limit: number): Promise<ExpiredMessages> {
    return this.run(async () => {
      const { rows } = await sql<{ messages: string; keys: string }>`
        with victims as (
          select chat_id, id from messages where created_at < ${createdBefore}
          limit ${limit}
          for update skip locked
        ),
        released as (
          delete from messages m using victims v where m.chat_id = v.chat_id and m.id = v.id
          returning m.chat_id, m.id, m.attachments
        ),
        ${ORPHAN_KEYS}
        select (select count(*) from released) as messages,
               (select count(*) from queued) as keys`.execute(this.db);
      return { messages: Number(rows[0]?.messages ?? 0), keys: Number(rows[0]?.keys ?? 0) };
    });
  }

  async deleteExpiredAttachmentIndex(createdBefore: number, limit: number): Promise<number> {
    // Index rows whose messages are all gone are removed with the last of them; this catches
    // what is left over (a key carried again later keeps only its first row's time).
    return this.run(async () => {
      const { rows } = await sql<{ n: string }>`
        with victims as (
          select key, chat_id from message_attachments ma
          where ma.created_at < ${createdBefore}
            and not exists (
              select 1 from messages m
              where m.attachments <> '[]'::jsonb
                and m.attachments @> jsonb_build_array(jsonb_build_object('key', ma.key)))
          limit ${limit}
          for update skip locked
        ),
        gone as (
          delete from message_attachments ma using victims v
          where ma.key = v.key and ma.chat_id = v.chat_id
          returning ma.key
        ),
        queued as (
          insert into media_deletions (key) select distinct key from gone
          on conflict (key) do nothing
        )
        select count(*) as n from gone`.execute(this.db);
      return Number(rows[0]?.n ?? 0);
    });
  }

  async expireDevices(activeBefore: number, now: number, limit: number): Promise<ExpiredDevices> {
    return this.run(async () => {
      const { rows } = await sql<{ devices: string; events: string }>`
        with victims as (
          select user_id, device_id from devices
          where last_active < ${activeBefore}
          limit ${limit}
          for update skip locked
        ),
        gone as (
          delete from devices d using victims v
          where d.user_id = v.user_id and d.device_id = v.device_id
          returning d.user_id, d.device_id, d.acked_seq
        ),
        -- The newest seq may have been known only from a removed device's cursor.
        kept_seq as (
          update users u set next_seq = greatest(u.next_seq, g.acked + 1)
          from (select user_id, max(acked_seq) as acked from gone group by user_id) g
          where u.id = g.user_id
        ),
        tombs as (
          insert into expired_devices (user_id, device_id, expired_at)
          select user_id, device_id, ${now}::int8 from gone
          on conflict (user_id, device_id) do update set expired_at = excluded.expired_at
        ),
        floors as (
          -- The remaining devices' cursors (this statement's snapshot still shows the deleted
          -- ones, so they are left out by hand).
          select d.user_id, min(d.acked_seq) as seq from devices d
          where d.user_id in (select user_id from gone)
            and (d.user_id, d.device_id) not in (select user_id, device_id from gone)
          group by d.user_id
        ),
        freed as (
          delete from inbox i using floors f
          where i.user_id = f.user_id and i.seq <= f.seq
          returning 1
        )
        select (select count(*) from gone) as devices,
               (select count(*) from freed) as events`.execute(this.db);
      return { devices: Number(rows[0]?.devices ?? 0), events: Number(rows[0]?.events ?? 0) };
    });
  }

  async pruneTombstones(expiredBefore: number, limit: number): Promise<number> {
    return this.run(async () => {
      const result = await sql`
        delete from expired_devices where (user_id, device_id) in (
          select user_id, device_id from expired_devices where expired_at < ${expiredBefore}
          limit ${limit}
          for update skip locked)`.execute(this.db);
      return Number(result.numAffectedRows ?? 0);
    });
  }

  async deleteExpiredReceiptMarks(before: number, limit: number): Promise<number> {
    return this.run(async () => {
      const result = await sql`
        delete from receipt_marks where (user_id, chat_id, reader) in (
          select user_id, chat_id, reader from receipt_marks where updated_at < ${before}
          limit ${limit}
          for update skip locked)`.execute(this.db);
      return Number(result.numAffectedRows ?? 0);
    });
  }

  async queuedObjectKeys(limit: number): Promise<string[]> {
    return this.run(async () => {
      const { rows } = await sql<{ key: string }>`
        select key from media_deletions order by queued_at, key limit ${limit}`.execute(this.db);
      return rows.map((r) => r.key);
    });
  }

  async dequeueObjectKeys(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.run(() =>
      sql`delete from media_deletions where key = any(${[...keys]}::text[])`.execute(this.db),
    );
  }

  private async run<T>(statement: () => Promise<T>): Promise<T> {
    try {
      return await statement();
    } catch (err) {
      throw toChatError(err);
    }
  }
}

/**
 * Migration 0004_retention: indexes the cleanup scans by age, the attachment-key lookup, the
 * tombstones of expired devices and the queue of objects to delete.
 */
export const retentionMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('inbox_created_idx').on('inbox').column('created_at').execute();
    await db.schema
      .createIndex('messages_created_idx')
      .on('messages')
      .column('created_at')
      .execute();
    await sql`
      create index messages_attachments_idx on messages
      using gin (attachments jsonb_path_ops) where attachments <> '[]'::jsonb`.execute(db);
    await db.schema
      .createIndex('devices_last_active_idx')
      .on('devices')
      .column('last_active')
      .execute();
    await db.schema
      .createTable('expired_devices')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('expired_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('expired_devices_pk', ['user_id', 'device_id'])
      .execute();
    await db.schema
      .createTable('media_deletions')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('queued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('media_deletions').ifExists().execute();
    await db.schema.dropTable('expired_devices').ifExists().execute();
    await db.schema.dropIndex('devices_last_active_idx').ifExists().execute();
    await db.schema.dropIndex('messages_attachments_idx').ifExists().execute();
    await db.schema.dropIndex('messages_created_idx').ifExists().execute();
    await db.schema.dropIndex('inbox_created_idx').ifExists().execute();
  },
};

/**
 * Migration 0005_message_content_removed: a delivered message is emptied instead of deleted, so
 * that read receipts still find it; the column says when (and that it is not a real message).
 * Nullable without a default: adding it rewrites nothing.
 */
export const messageContentMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('messages').addColumn('content_removed_at', 'bigint').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('messages').dropColumn('content_removed_at').execute();
  },
};
