/**
 * Delivered and read receipts (issue 7). The `receipts` table holds one row per (message,
 * recipient) with the first delivery and read times; each change that sets a time also appends
 * a `receipt` event to the sender's inbox in the same transaction, so the sender's devices get
 * it durably (also later, by sync). A time is set once, so no receipt event is ever repeated.
 *
 * Lock order, the same as sends: chat rows (FOR KEY SHARE) first, then user rows in id order
 * (here the senders, whose inboxes get the events), then receipts and chat_members rows.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import { toChatError } from './errors';
import { appendEvents, lockUsers } from './pg-store';
import type { NewEvent } from './pg-store';
import type { Database } from './schema';
import type { Delivery, DeviceCursor } from './types';

export interface ReadIntent {
  readonly userId: string;
  readonly chatId: string;
  readonly messageId: string;
}

export interface ReadBatchResult {
  /** One entry per intent, in order: undefined when it was applied, else why not. */
  readonly outcomes: readonly (ChatError | undefined)[];
  /** The receipt events committed for senders. */
  readonly deliveries: readonly Delivery[];
}

export interface ReceiptStoreOptions {
  /** Most messages one read marks with individual receipts (older unread ones only move the
   *  read position). Default 500. */
  readonly maxReadReceipts?: number;
  /** Most delivered receipts one ack flush records (the rest follow on the next). Default 5000. */
  readonly maxDeliveredPerFlush?: number;
}

type Status = 'delivered' | 'read';

interface Receipt {
  readonly messageId: string;
  readonly chatId: string;
  readonly sender: string;
  readonly user: string;
  readonly status: Status;
}

const MESSAGE_ID = /^[0-9]{1,18}$/;

/**
 * @example
 * const receipts = new PgReceiptStore(db);
 * const delivered = await receipts.recordDelivered([{ userId: 'bob', deviceId: 'd1', seq: 7 }], Date.now());
 * fabric.deliver(delivered);
 */
export class PgReceiptStore {
  private readonly options: Readonly<Required<ReceiptStoreOptions>>;

  constructor(
    private readonly db: Kysely<Database>,
    options: ReceiptStoreOptions = {},
  ) {
    this.options = Object.freeze({
      maxReadReceipts: options.maxReadReceipts ?? 500,
      maxDeliveredPerFlush: options.maxDeliveredPerFlush ?? 5000,
    });
  }

  /**
   * Call with device acks BEFORE they are written (ackMany deletes acked events): the message
   * events of each user between the highest cursor of any of their devices and the new one are
   * acked for the first time, so their senders get a `delivered` receipt. Safe to call again
   * with the same cursors (receipts are set once).
   */
  async recordDelivered(cursors: readonly DeviceCursor[], now: number): Promise<Delivery[]> {
    const newest = new Map<string, number>();
    for (const c of cursors) newest.set(c.userId, Math.max(newest.get(c.userId) ?? 0, c.seq));
    if (newest.size === 0) return [];
    try {
      const { rows } = await sql<{
        user_id: string;
        message_id: string;
        chat_id: string;
        sender_id: string;
      }>`
        with input as (
          select * from unnest(${[...newest.keys()]}::text[], ${[...newest.values()]}::int8[])
            as t(user_id, seq)
        ),
        prev as (
          select d.user_id, max(d.acked_seq) as acked from devices d
          where d.user_id = any(${[...newest.keys()]}::text[]) group by d.user_id
        )
        select i.user_id, i.message_id, m.chat_id, m.sender_id
        from input
        join prev on prev.user_id = input.user_id
        join inbox i on i.user_id = input.user_id and i.seq > prev.acked and i.seq <= input.seq
        join messages m on m.id = i.message_id
        where i.kind = 'message' and m.sender_id <> i.user_id
        order by i.user_id, i.seq
        limit ${this.options.maxDeliveredPerFlush}`.execute(this.db);
      if (rows.length === 0) return [];
      return await this.db.transaction().execute(async (tx) => {
        const nextSeq = await lockUsers(tx, unique(rows.map((r) => r.sender_id)));
        const { rows: fresh } = await sql<{ message_id: string; user_id: string }>`
          insert into receipts (message_id, user_id, delivered_at)
          select * from unnest(
            ${rows.map((r) => r.message_id)}::int8[], ${rows.map((r) => r.user_id)}::text[],
            ${rows.map(() => now)}::int8[])
          on conflict (message_id, user_id) do nothing
          returning message_id, user_id`.execute(tx);
        const isFresh = new Set(fresh.map((r) => `${r.message_id}\u0000${r.user_id}`));
        const receipts = rows
          .filter((r) => isFresh.has(`${r.message_id}\u0000${r.user_id}`))
          .map((r): Receipt => ({
            messageId: r.message_id,
            chatId: r.chat_id,
            sender: r.sender_id,
            user: r.user_id,
            status: 'delivered',
          }));
        return appendEvents(tx, nextSeq, receiptEvents(receipts, now));
      });
    } catch (err) {
      throw toChatError(err);
    }
  }

  /**
   * Marks messages read, many requests in one transaction: each intent marks its message and
   * every earlier message of the chat from others (since the reader joined) read, sending
   * `read` receipts to their senders, and `delivered` first where none was sent yet. The
   * member's read position moves to the message; one intent gives individual receipts for at
   * most maxReadReceipts messages. Per intent: NOT_FOUND (no such chat, or no such message in
   * it), NOT_MEMBER. A message retention deleted after every recipient read it counts as read
   * (no error) when at or below the reader's read position.
   */
  async markRead(intents: readonly ReadIntent[], now: number): Promise<ReadBatchResult> {
    if (intents.length === 0) return { outcomes: [], deliveries: [] };
    try {
      return await this.db.transaction().execute((tx) => this.readBatch(tx, intents, now));
    } catch (err) {
      throw toChatError(err);
    }
  }

  private async readBatch(
    tx: Transaction<Database>,
    intents: readonly ReadIntent[],
    now: number,
  ): Promise<ReadBatchResult> {
    const chatIds = unique(intents.map((i) => i.chatId)).sort();
    // Membership stays as read until commit (changes lock the chat FOR UPDATE).
    const { rows: chats } = await sql<{ id: string }>`
      select id from chats where id = any(${chatIds}::text[]) order by id for key share`.execute(
      tx,
    );
    const chatExists = new Set(chats.map((c) => c.id));
    const users = unique(intents.map((i) => i.userId));
    const memberRows = await tx
      .selectFrom('chat_members')
      .select(['chat_id', 'user_id', 'read_upto', 'joined_at'])
      .where('chat_id', 'in', chatIds)
      .where('user_id', 'in', users)
      .execute();
    const member = new Map(memberRows.map((m) => [`${m.chat_id}\u0000${m.user_id}`, m]));
    const messageIds = unique(intents.map((i) => i.messageId).filter((id) => MESSAGE_ID.test(id)));
    const messageRows =
      messageIds.length === 0
        ? []
        : await tx
            .selectFrom('messages')
            .select(['id', 'chat_id'])
            .where('id', 'in', messageIds)
            .execute();
    const chatOf = new Map(messageRows.map((m) => [String(m.id), m.chat_id]));

    // Per (chat, reader): the highest message read, above the current read position.
    const outcomes: (ChatError | undefined)[] = [];
    const wanted = new Map<
      string,
      { chatId: string; userId: string; from: number; upto: bigint; joinedAt: number }
    >();
    for (const intent of intents) {
      const m = member.get(`${intent.chatId}\u0000${intent.userId}`);
      if (!chatExists.has(intent.chatId)) {
        outcomes.push(new ChatError('NOT_FOUND', 'no such chat', { chatId: intent.chatId }));
      } else if (m === undefined) {
        outcomes.push(
          new ChatError('NOT_MEMBER', 'not a member of this chat', { chatId: intent.chatId }),
        );
      } else if (chatOf.get(intent.messageId) !== intent.chatId) {
        // Retention deletes a message once every recipient has read it, so a late read of one
        // at or below the reader's read position (another device of theirs, say) finds it gone
        // with nothing left to do.
        const readAndGone =
          MESSAGE_ID.test(intent.messageId) &&
          !chatOf.has(intent.messageId) &&
          BigInt(intent.messageId) <= BigInt(m.read_upto);
        outcomes.push(
          readAndGone
            ? undefined
            : new ChatError('NOT_FOUND', 'no such message in this chat', {
                chatId: intent.chatId,
                messageId: intent.messageId,
              }),
        );
      } else {
        outcomes.push(undefined);
        const upto = BigInt(intent.messageId);
        if (upto <= BigInt(m.read_upto)) continue;
        const key = `${intent.chatId}\u0000${intent.userId}`;
        const seen = wanted.get(key);
        if (seen === undefined || upto > seen.upto) {
          wanted.set(key, {
            chatId: intent.chatId,
            userId: intent.userId,
            from: Number(m.read_upto),
            upto,
            joinedAt: Number(m.joined_at),
          });
        }
      }
    }
    if (wanted.size === 0) return { outcomes, deliveries: [] };
    const ranges = [...wanted.values()];

    const { rows: candidates } = await sql<{
      id: string;
      chat_id: string;
      sender_id: string;
      reader: string;
    }>`
      select m.id, m.chat_id, m.sender_id, r.user_id as reader
      from unnest(
        ${ranges.map((r) => r.chatId)}::text[], ${ranges.map((r) => r.userId)}::text[],
        ${ranges.map((r) => r.from)}::int8[], ${ranges.map((r) => r.upto.toString())}::int8[],
        ${ranges.map((r) => r.joinedAt)}::int8[]
      ) as r(chat_id, user_id, from_id, upto_id, joined_at)
      cross join lateral (
        select m.id, m.chat_id, m.sender_id from messages m
        where m.chat_id = r.chat_id and m.id > r.from_id and m.id <= r.upto_id
          and m.sender_id <> r.user_id and m.created_at >= r.joined_at
        order by m.id desc
        limit ${this.options.maxReadReceipts}
        -- Retention deletes a message read by everyone: it skips these rows until we commit,
        -- so the receipts written below never lose their message.
        for key share
      ) m`.execute(tx);

    let deliveries: Delivery[] = [];
    if (candidates.length > 0) {
      const nextSeq = await lockUsers(tx, unique(candidates.map((c) => c.sender_id)));
      // Read after the sender locks: a concurrent recordDelivered for these senders has either
      // committed (and is seen here) or waits for us (and then finds our rows).
      const { rows: existing } = await sql<{
        message_id: string;
        user_id: string;
        delivered_at: string | null;
        read_at: string | null;
      }>`
        select r.message_id, r.user_id, r.delivered_at, r.read_at
        from receipts r
        join unnest(${candidates.map((c) => c.id)}::int8[], ${candidates.map((c) => c.reader)}::text[])
          as t(message_id, user_id) on r.message_id = t.message_id and r.user_id = t.user_id
        for update of r`.execute(tx);
      const known = new Map(existing.map((r) => [`${r.message_id}\u0000${r.user_id}`, r]));
      const receipts: Receipt[] = [];
      const toWrite = candidates.filter(
        (c) => known.get(`${c.id}\u0000${c.reader}`)?.read_at == null,
      );
      for (const c of toWrite) {
        const base = { messageId: c.id, chatId: c.chat_id, sender: c.sender_id, user: c.reader };
        if (known.get(`${c.id}\u0000${c.reader}`)?.delivered_at == null) {
          receipts.push({ ...base, status: 'delivered' });
        }
        receipts.push({ ...base, status: 'read' });
      }
      if (toWrite.length > 0) {
        await sql`
          insert into receipts (message_id, user_id, delivered_at, read_at)
          select id, reader, ${now}::int8, ${now}::int8
          from unnest(${toWrite.map((c) => c.id)}::int8[], ${toWrite.map((c) => c.reader)}::text[])
            as t(id, reader)
          on conflict (message_id, user_id) do update
          set read_at = excluded.read_at,
              delivered_at = coalesce(receipts.delivered_at, excluded.delivered_at)`.execute(tx);
      }
      deliveries = await appendEvents(tx, nextSeq, receiptEvents(receipts, now));
    }
    await sql`
      update chat_members cm set read_upto = greatest(cm.read_upto, r.upto)
      from unnest(
        ${ranges.map((r) => r.chatId)}::text[], ${ranges.map((r) => r.userId)}::text[],
        ${ranges.map((r) => r.upto.toString())}::int8[]) as r(chat_id, user_id, upto)
      where cm.chat_id = r.chat_id and cm.user_id = r.user_id`.execute(tx);
    return { outcomes, deliveries };
  }
}

/** One receipt event per receipt, into the sender's inbox, oldest message first. */
function receiptEvents(receipts: readonly Receipt[], now: number): NewEvent[] {
  const sorted = [...receipts].sort((a, b) =>
    a.sender !== b.sender
      ? a.sender < b.sender
        ? -1
        : 1
      : BigInt(a.messageId) !== BigInt(b.messageId)
        ? BigInt(a.messageId) < BigInt(b.messageId)
          ? -1
          : 1
        : 0,
  );
  return sorted.map((r) => ({
    userId: r.sender,
    messageId: null,
    payload: JSON.stringify({ messageId: r.messageId, user: r.user, status: r.status }),
    event: {
      seq: 0,
      kind: 'receipt',
      chatId: r.chatId,
      messageId: r.messageId,
      user: r.user,
      status: r.status,
      ts: now,
    },
  }));
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
