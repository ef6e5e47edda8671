/**
 * Retention (issue 8): the statements of the cleanup job. Each call is one short transaction on
 * at most `limit` rows, so the job never holds locks for long; rows it changes are locked with
 * SKIP LOCKED, so it never waits for a send or a cursor write (and they wait at most for one
 * batch).
 *
 * One code path for both engines (issue 15): each call first picks its rows with a plain read
 * (on Citus one that reads every shard), then changes them one shard at a time, each statement
 * naming its shard's keys (`perShard`/`onShard`), because Citus runs neither `FOR UPDATE` nor a
 * modifying CTE on several shards at once. The picking read does not lock; the changing
 * statement checks the conditions again on the rows it locks. A call is one transaction that
 * may span shards (`acrossShards`; two-phase commit on Citus), so what it deletes and what it
 * queues for object deletion commit together.
 *
 * What goes, and when:
 * - a message's text, once its fan-out is done (it is older than every node's fan-out mark:
 *   its recipients' inboxes have their own copies) and the delivered grace period passed. The
 *   row stays, with its attachments and what read receipts need (id, chat, sender, time), until
 *   every recipient has read it (their read watermark passed it; members who joined after it
 *   do not count), then goes. A chat change's row goes once its fan-out is done and the grace
 *   period passed;
 * - attachment objects, once every recipient device fetched them or a grace period after full
 *   delivery passed (attachment-release.ts): the attachment index, not the message row, holds
 *   them, so a recipient that reads before it downloads still finds them;
 * - everything older than the retention period: inbox events, messages (emptied or not),
 *   attachment index rows and fetch records, receipt watermarks kept for away devices;
 * - devices not active for the retention period (a tombstone remembers them, so a device that
 *   comes back is told it starts fresh);
 * - attachment objects whose key nothing holds any more: queued in `media_deletions` in the
 *   transaction that released or expired the last index row or message, and removed from object
 *   storage by the job afterwards (a crash in between leaves the queue row, so the object is
 *   removed later).
 *
 * Deleting events or devices can remove the newest seq a user had: those statements raise
 * users.next_seq past it, so a seq is never given out twice (user-step.ts).
 */
import { sql } from 'kysely';
import type { Kysely, Migration, Transaction } from 'kysely';
import { toChatError } from './errors';
import { releaseAttachments } from './attachment-release';
import type { ReleasedAttachments } from './attachment-release';
import { queueOrphanKeys } from './orphan-keys';
import type { Database } from './schema';
import { EngineRouters, acrossShards, onShard, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';

/** One window of the delivered-messages scan. */
export interface DeliveredBatch {
  /** Where the window ended; pass it as `after` to continue, null when none was left. */
  readonly lastId: string | null;
  /** Messages whose text was removed; their rows stay for read receipts and attachments. */
  readonly emptied: number;
  /** Messages deleted whole: read by every recipient (and chat changes, fanned out). */
  readonly deleted: number;
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
  /**
   * Among the `limit` attachment index rows after position `after` ('' for the start): releases
   * those whose objects may go (attachment-release.ts) and queues keys no row holds any more.
   */
  releaseAttachments(
    after: string,
    now: number,
    keepAfterDeliveryMs: number,
    limit: number,
  ): Promise<ReleasedAttachments>;
  deleteExpiredInbox(createdBefore: number, limit: number): Promise<number>;
  deleteExpiredMessages(createdBefore: number, limit: number): Promise<ExpiredMessages>;
  deleteExpiredAttachmentIndex(createdBefore: number, limit: number): Promise<number>;
  /** Records of attachment fetches older than `before`. */
  deleteExpiredFetches(before: number, limit: number): Promise<number>;
  expireDevices(activeBefore: number, now: number, limit: number): Promise<ExpiredDevices>;
  pruneTombstones(expiredBefore: number, limit: number): Promise<number>;
  /** Receipt watermarks kept for away devices that have not moved since `before`. */
  deleteExpiredReceiptMarks(before: number, limit: number): Promise<number>;
  /** Keys queued for object deletion, oldest first. */
  queuedObjectKeys(limit: number): Promise<string[]>;
  /** Drops keys from the queue once their objects are gone. */
  dequeueObjectKeys(keys: readonly string[]): Promise<void>;
}

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

interface MessageRef {
  readonly chat_id: string;
  readonly id: string;
}

interface UserRowRef {
  readonly user_id: string;
  /** The row's second key column (a seq, a device id, a chat id), as text. */
  readonly k: string;
}

/** Attachments of deleted messages, one row per message. */
interface Released {
  readonly attachments: unknown;
}

/** Sum of a count column over the shard groups' results. */
function total<R>(rows: readonly R[], count: (row: R) => string | number): number {
  return rows.reduce((sum, row) => sum + Number(count(row)), 0);
}

/** Attachment keys of `released` messages. */
function keysOf(released: readonly Released[]): string[] {
  const keys = new Set<string>();
  for (const { attachments } of released) {
    if (!Array.isArray(attachments)) continue;
    for (const a of attachments as { key?: unknown }[]) {
      if (typeof a?.key === 'string') keys.add(a.key);
    }
  }
  return [...keys];
}

/**
 * @example
 * const retention = new PgRetentionStore(db);
 * const gone = await retention.deleteExpiredInbox(now - 30 * DAY, 1000);
 */
export class PgRetentionStore implements RetentionStore {
  private readonly routers: EngineRouters;

  constructor(private readonly db: Kysely<Database>) {
    this.routers = EngineRouters.of(db);
  }

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
    return this.run(async (tx, { chats }) => {
      const { rows: marks } = await sql<{ before: string }>`
        select least(${createdBefore}::int8, coalesce(min(upto), ${createdBefore}::int8)) as before
        from fanout_marks`.execute(tx);
      const before = Number(marks[0]?.before ?? createdBefore);
      const { rows: window } = await sql<MessageRef & { created_at: string }>`
        select created_at, chat_id, id from messages
        where (created_at, chat_id, id) > (${from.createdAt}::int8, ${from.chatId}, ${from.id}::int8)
          and created_at < ${before}::int8
        order by created_at, chat_id, id
        limit ${limit}`.execute(tx);
      const last = window.at(-1);
      if (last === undefined) return { lastId: null, emptied: 0, deleted: 0 };
      const changed = await perShard(
        chats,
        window,
        (m) => m.chat_id,
        async (group, keys) => {
          const { rows } = await sql<{ emptied: string; deleted: string }>`
          with victims as (
            select m.chat_id, m.id, m.attachments, m.kind = 'chat' or r.read_by_all as gone
            from messages m
            cross join lateral (
              -- The members a read receipt is for have all read past it.
              select not exists (
                  select 1 from chat_members cm
                  where cm.chat_id = m.chat_id${onShard('cm.chat_id', keys)}
                    and cm.user_id <> m.sender_id
                    and cm.joined_at <= m.created_at and cm.read_upto < m.id) as read_by_all
            ) r
            where (m.chat_id, m.id) in (
                select * from unnest(${group.map((m) => m.chat_id)}::text[],
                                     ${group.map((m) => m.id)}::int8[]))${onShard('m.chat_id', keys)}
              and m.created_at < ${before}::int8
              and (m.kind = 'chat' or m.content_removed_at is null or r.read_by_all)
            for update of m skip locked
          ),
          gone as (
            delete from messages m using victims v
            where m.chat_id = v.chat_id and m.id = v.id and v.gone${onShard('m.chat_id', keys)}
            returning 1
          ),
          -- The text goes; the attachment list stays with the row. Their objects are the
          -- attachment index's business (attachment-release.ts), not the row's.
          emptied as (
            update messages m
            set body = null, content_removed_at = ${now}::int8
            from victims v
            where m.chat_id = v.chat_id and m.id = v.id and not v.gone${onShard('m.chat_id', keys)}
            returning 1
          )
          select (select count(*) from emptied) as emptied,
                 (select count(*) from gone) as deleted`.execute(tx);
          return rows;
        },
      );
      return {
        lastId: `${last.created_at}:${last.chat_id}:${last.id}`,
        emptied: total(changed, (r) => r.emptied),
        deleted: total(changed, (r) => r.deleted),
      };
    });
  }

  async releaseAttachments(
    after: string,
    now: number,
    keepAfterDeliveryMs: number,
    limit: number,
  ): Promise<ReleasedAttachments> {
    return this.run((tx, routers) =>
      releaseAttachments(tx, routers, after, now, keepAfterDeliveryMs, limit),
    );
  }

  async deleteExpiredInbox(createdBefore: number, limit: number): Promise<number> {
    return this.run(async (tx, { users }) => {
      const { rows: picked } = await sql<UserRowRef>`
        select user_id, seq::text as k from inbox where created_at < ${createdBefore}
        limit ${limit}`.execute(tx);
      const counts = await perShard(
        users,
        picked,
        (r) => r.user_id,
        async (group, keys) => {
          const { rows } = await sql<{ n: string }>`
          with victims as (
            select user_id, seq from inbox
            where (user_id, seq) in (
                select * from unnest(${group.map((r) => r.user_id)}::text[],
                                     ${group.map((r) => r.k)}::int8[]))${onShard('user_id', keys)}
              and created_at < ${createdBefore}
            for update skip locked
          ),
          gone as (
            delete from inbox i using victims v
            where i.user_id = v.user_id and i.seq = v.seq${onShard('i.user_id', keys)}
            returning i.user_id, i.seq
          ),
          floors as (
            update users u set next_seq = greatest(u.next_seq, g.seq + 1),
              expired_seq = greatest(u.expired_seq, g.seq)
            from (select user_id, max(seq) as seq from gone group by user_id) g
            where u.id = g.user_id${onShard('u.id', keys)}
          )
          select count(*) as n from gone`.execute(tx);
          return rows;
        },
      );
      return total(counts, (r) => r.n);
    });
  }

  async deleteExpiredMessages(createdBefore: number, limit: number): Promise<ExpiredMessages> {
    return this.run(async (tx, { chats }) => {
      const { rows: picked } = await sql<MessageRef>`
        select chat_id, id from messages where created_at < ${createdBefore}
        limit ${limit}`.execute(tx);
      const released = await perShard(
        chats,
        picked,
        (m) => m.chat_id,
        async (group, keys) => {
          const { rows } = await sql<Released>`
          with victims as (
            select chat_id, id from messages
            where (chat_id, id) in (
                select * from unnest(${group.map((m) => m.chat_id)}::text[],
                                     ${group.map((m) => m.id)}::int8[]))${onShard('chat_id', keys)}
              and created_at < ${createdBefore}
            for update skip locked
          )
          delete from messages m using victims v
          where m.chat_id = v.chat_id and m.id = v.id${onShard('m.chat_id', keys)}
          returning m.attachments`.execute(tx);
          return rows;
        },
      );
      return {
        messages: released.length,
        keys: (await queueOrphanKeys(tx, chats, keysOf(released))).queued,
      };
    });
  }

  async deleteExpiredAttachmentIndex(createdBefore: number, limit: number): Promise<number> {
    // Index rows whose messages are all gone are removed with the last of them; this catches
    // what is left over (a key carried again later keeps only its first row's time).
    return this.run(async (tx, { chats }) => {
      const { rows: picked } = await sql<{ key: string }>`
        select distinct key from (
          select key from message_attachments where created_at < ${createdBefore}
          limit ${limit}) p`.execute(tx);
      const { indexRows } = await queueOrphanKeys(
        tx,
        chats,
        picked.map((r) => r.key),
      );
      return indexRows;
    });
  }

  async deleteExpiredFetches(before: number, limit: number): Promise<number> {
    return this.run(async (tx, { users }) => {
      const { rows: picked } = await sql<UserRowRef & { key: string }>`
        select user_id, device_id as k, key from attachment_fetches where fetched_at < ${before}
        limit ${limit}`.execute(tx);
      return this.deletePicked(users, picked, (group, keys) =>
        sql`
          delete from attachment_fetches
          where (user_id, key, device_id) in (
              select * from unnest(${group.map((r) => r.user_id)}::text[],
                                   ${group.map((r) => r.key)}::text[],
                                   ${group.map((r) => r.k)}::text[]))${onShard('user_id', keys)}
            and fetched_at < ${before}`.execute(tx),
      );
    });
  }

  async expireDevices(activeBefore: number, now: number, limit: number): Promise<ExpiredDevices> {
    // Several statements per shard in the call's transaction rather than one with modifying
    // CTEs: Citus does not run an INSERT ... ON CONFLICT fed by a sibling CTE on the worker.
    return this.run(async (tx, { users }) => {
      const { rows: picked } = await sql<UserRowRef>`
        select user_id, device_id as k from devices where last_active < ${activeBefore}
        limit ${limit}`.execute(tx);
      const counts = await perShard(
        users,
        picked,
        (r) => r.user_id,
        async (group, keys) => {
          const { rows: gone } = await sql<{ user_id: string; device_id: string; acked: string }>`
          with victims as (
            select user_id, device_id from devices
            where (user_id, device_id) in (
                select * from unnest(${group.map((r) => r.user_id)}::text[],
                                     ${group.map((r) => r.k)}::text[]))${onShard('user_id', keys)}
              and last_active < ${activeBefore}
            for update skip locked
          )
          delete from devices d using victims v
          where d.user_id = v.user_id and d.device_id = v.device_id${onShard('d.user_id', keys)}
          returning d.user_id, d.device_id, d.acked_seq as acked`.execute(tx);
          if (gone.length === 0) return [{ devices: 0, events: 0 }];
          const userIds = gone.map((g) => g.user_id);
          // The newest seq may have been known only from a removed device's cursor.
          await sql`
          update users u set next_seq = greatest(u.next_seq, g.acked + 1)
          from (select user_id, max(acked) as acked
                from unnest(${userIds}::text[], ${gone.map((g) => g.acked)}::int8[])
                  as t(user_id, acked)
                group by user_id) g
          where u.id = g.user_id${onShard('u.id', keys)}`.execute(tx);
          await sql`
          insert into expired_devices (user_id, device_id, expired_at)
          select user_id, device_id, ${now}::int8
          from unnest(${userIds}::text[], ${gone.map((g) => g.device_id)}::text[])
            as t(user_id, device_id)
          on conflict (user_id, device_id) do update set expired_at = excluded.expired_at`.execute(
            tx,
          );
          // Events every remaining device has acked (a user without devices keeps none).
          const freed = await sql`
          delete from inbox i
          using (select d.user_id, min(d.acked_seq) as seq from devices d
                 where d.user_id = any(${userIds}::text[])${onShard('d.user_id', keys)}
                 group by d.user_id) f
          where i.user_id = f.user_id and i.seq <= f.seq${onShard('i.user_id', keys)}`.execute(tx);
          return [{ devices: gone.length, events: Number(freed.numAffectedRows ?? 0) }];
        },
      );
      return { devices: total(counts, (r) => r.devices), events: total(counts, (r) => r.events) };
    });
  }

  async pruneTombstones(expiredBefore: number, limit: number): Promise<number> {
    return this.run(async (tx, { users }) => {
      const { rows: picked } = await sql<UserRowRef>`
        select user_id, device_id as k from expired_devices where expired_at < ${expiredBefore}
        limit ${limit}`.execute(tx);
      return this.deletePicked(users, picked, (group, keys) =>
        sql`
          delete from expired_devices where (user_id, device_id) in (
            select user_id, device_id from expired_devices
            where (user_id, device_id) in (
                select * from unnest(${group.map((r) => r.user_id)}::text[],
                                     ${group.map((r) => r.k)}::text[]))${onShard('user_id', keys)}
              and expired_at < ${expiredBefore}
            for update skip locked)${onShard('user_id', keys)}`.execute(tx),
      );
    });
  }

  async deleteExpiredReceiptMarks(before: number, limit: number): Promise<number> {
    return this.run(async (tx, { users }) => {
      const { rows: picked } = await sql<UserRowRef & { reader: string }>`
        select user_id, chat_id as k, reader from receipt_marks where updated_at < ${before}
        limit ${limit}`.execute(tx);
      return this.deletePicked(users, picked, (group, keys) =>
        sql`
          delete from receipt_marks where (user_id, chat_id, reader) in (
            select user_id, chat_id, reader from receipt_marks
            where (user_id, chat_id, reader) in (
                select * from unnest(${group.map((r) => r.user_id)}::text[],
                                     ${group.map((r) => r.k)}::text[],
                                     ${group.map((r) => r.reader)}::text[]))${onShard('user_id', keys)}
              and updated_at < ${before}
            for update skip locked)${onShard('user_id', keys)}`.execute(tx),
      );
    });
  }

  async queuedObjectKeys(limit: number): Promise<string[]> {
    return this.run(async (tx) => {
      const { rows } = await sql<{ key: string }>`
        select key from media_deletions order by queued_at, key limit ${limit}`.execute(tx);
      return rows.map((r) => r.key);
    });
  }

  async dequeueObjectKeys(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.run((tx) =>
      sql`delete from media_deletions where key = any(${[...keys]}::text[])`.execute(tx),
    );
  }

  /** Deletes the picked rows of a user-keyed table shard by shard; returns how many went. */
  private async deletePicked<R extends UserRowRef>(
    users: KeyRouter,
    picked: readonly R[],
    statement: (group: R[], keys: string[] | null) => Promise<{ numAffectedRows?: bigint }>,
  ): Promise<number> {
    const counts = await perShard(
      users,
      picked,
      (r) => r.user_id,
      async (group, keys) => [Number((await statement(group, keys)).numAffectedRows ?? 0)],
    );
    return total(counts, (n) => n);
  }

  /** One call's transaction, allowed to read every shard, with the engine's key routers. */
  private async run<T>(
    statements: (
      tx: Transaction<Database>,
      routers: { readonly chats: KeyRouter; readonly users: KeyRouter },
    ) => Promise<T>,
  ): Promise<T> {
    try {
      const routers = await this.routers.get();
      return await acrossShards(this.db, (tx) => statements(tx, routers));
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
