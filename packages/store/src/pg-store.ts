/**
 * The Postgres implementation of ChatStore (DESIGN.md sections 3 and 8).
 *
 * Lock order, the same in every transaction so that concurrent transactions, also from other
 * node processes, cannot deadlock: chat rows first (sorted by id), then user rows (sorted by id;
 * missing users are inserted in that order first). A user's row lock guards their next_seq, so
 * each user's inbox gets contiguous sequence numbers in commit order. Sends keep this order
 * inside Postgres, in the chat_send_batch function of send-batch.ts.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import type { AttachmentRef, InboxEvent } from '@chat/protocol';
import type { DeviceConnectStats } from './device-connect';
import { BatchQueue } from './batch-queue';
import { DeviceConnector } from './device-connect';
import { toChatError } from './errors';
import { silentLogger } from './pool';
import type { StoreLogger } from './pool';
import { sendBatch } from './send-batch';
import type { Outcome } from './send-batch';
import type { Database, InboxKind } from './schema';
import type {
  ChatStore,
  Delivery,
  DeviceCursor,
  DeviceState,
  MembershipResult,
  SendInput,
  SendResult,
  SyncPage,
} from './types';

export interface PgChatStoreOptions {
  /** Most members of one chat, the creator included (protocol default 100). */
  readonly maxMembersPerChat: number;
  /** Most sends committed in one transaction (default 256). */
  readonly maxBatchSize?: number;
  /** Most send transactions in flight at once (default 2). */
  readonly maxConcurrentBatches?: number;
  readonly logger?: StoreLogger;
  /**
   * Called after each group-commit transaction (committed or not), for metrics; must be cheap
   * and must not throw.
   */
  readonly onBatch?: (batch: SendBatchInfo) => void;
}

/** One group-commit transaction, as `onBatch` sees it. */
export interface SendBatchInfo {
  /** What the statement wrote (`send`: a group commit of sends). */
  readonly kind: string;
  /** Items in the statement. */
  readonly size: number;
  /** From begin to commit (or failure), milliseconds. */
  readonly durationMs: number;
  readonly committed: boolean;
}

/** Counters of the send batcher, for tests and metrics. */
export interface SendStats {
  /** send() calls that reached the batcher. */
  readonly sends: number;
  /** Send transactions started (retries of a split batch included). */
  readonly transactions: number;
  /** Send transactions that committed. */
  readonly commits: number;
  /** Most sends in one transaction so far. */
  readonly largestBatch: number;
}

interface PendingSend {
  readonly input: SendInput;
  readonly resolve: (result: SendResult) => void;
  readonly reject: (err: ChatError) => void;
}

/** One inbox row to append, with the event it carries. */
export interface NewEvent {
  readonly userId: string;
  readonly event: InboxEvent;
  readonly messageId: string | null;
  readonly payload: string | null;
}

interface SyncRow {
  seq: string;
  kind: InboxKind;
  chat_id: string;
  message_id: string | null;
  payload: Record<string, unknown> | null;
  created_at: string;
  sender_id: string | null;
  body: string | null;
  attachments: AttachmentRef[] | null;
  content_removed_at: string | null;
}

/**
 * @example
 * const store = new PgChatStore(createDatabase(url), { maxMembersPerChat: 100 });
 * const { chatId } = await store.createChat('alice', ['bob'], null, Date.now());
 * const sent = await store.send({ senderId: 'alice', chatId, clientMsgId: 'c1', body: 'hi',
 *   attachments: [], now: Date.now() });
 */
export class PgChatStore implements ChatStore {
  private readonly options: Readonly<Required<Omit<PgChatStoreOptions, 'onBatch'>>>;
  private readonly onBatch: ((batch: SendBatchInfo) => void) | undefined;
  private readonly queue: BatchQueue<PendingSend>;
  private closed = false;
  private closing: Promise<void> | null = null;
  private counters = { sends: 0, transactions: 0, commits: 0, largestBatch: 0 };
  private readonly devices: DeviceConnector;

  constructor(
    private readonly db: Kysely<Database>,
    options: PgChatStoreOptions,
  ) {
    this.options = Object.freeze({
      maxMembersPerChat: options.maxMembersPerChat,
      maxBatchSize: options.maxBatchSize ?? 256,
      maxConcurrentBatches: options.maxConcurrentBatches ?? 2,
      logger: options.logger ?? silentLogger,
    });
    this.onBatch = options.onBatch;
    this.devices = new DeviceConnector(db);
    if (!(this.options.maxBatchSize >= 1 && this.options.maxConcurrentBatches >= 1)) {
      throw new RangeError('maxBatchSize and maxConcurrentBatches must be at least 1');
    }
    this.queue = new BatchQueue((batch) => this.runBatch(batch), {
      maxBatchSize: this.options.maxBatchSize,
      maxConcurrent: this.options.maxConcurrentBatches,
    });
  }

  /** One round trip to Postgres (`select 1`), for readiness checks; throws ChatError. */
  async ping(): Promise<void> {
    try {
      await sql`select 1`.execute(this.db);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** A snapshot of the send batcher's counters. */
  get stats(): SendStats {
    return { ...this.counters };
  }

  // ---- devices and cursors ----

  /** Registers a device at welcome; concurrent calls share one statement (see DeviceConnector). */
  connectDevice(userId: string, deviceId: string, now: number): Promise<DeviceState> {
    return this.devices.connect(userId, deviceId, now);
  }

  /** A snapshot of the device-connect batcher's counters. */
  get connectStats(): DeviceConnectStats {
    return this.devices.stats;
  }

  async ack(userId: string, deviceId: string, seq: number): Promise<void> {
    await this.ackMany([{ userId, deviceId, seq }]);
  }

  /** `now`, when given, also refreshes the devices' last_active (retention keeps them). */
  async ackMany(cursors: readonly DeviceCursor[], now?: number): Promise<void> {
    // One statement per flush, whatever the number of devices: acks are the most frequent
    // write, and a transaction per device would cost a commit (an fsync) each.
    const latest = new Map<string, DeviceCursor>();
    for (const c of cursors) {
      const key = `${c.userId}\u0000${c.deviceId}`;
      const seen = latest.get(key);
      if (seen === undefined || c.seq > seen.seq) latest.set(key, c);
    }
    const rows = [...latest.values()].sort((a, b) =>
      a.userId === b.userId ? (a.deviceId < b.deviceId ? -1 : 1) : a.userId < b.userId ? -1 : 1,
    );
    if (rows.length === 0) return;
    try {
      // Cursors move forward only and never past the user's latest seq. Then each user's events
      // that every device has acked are deleted. A CTE's update is invisible to the rest of the
      // statement, so the floor takes the new cursors from `cur` and the others from `devices`.
      await sql`
        with input as (
          select * from unnest(
            ${rows.map((r) => r.userId)}::text[],
            ${rows.map((r) => r.deviceId)}::text[],
            ${rows.map((r) => r.seq)}::int8[]
          ) as t(user_id, device_id, seq)
        ),
        cur as (
          update devices d
          set acked_seq = greatest(d.acked_seq, least(i.seq, u.next_seq - 1)),
            last_active = greatest(d.last_active, coalesce(${now ?? null}::int8, d.last_active))
          from input i, users u
          where d.user_id = i.user_id and d.device_id = i.device_id and u.id = i.user_id
          returning d.user_id, d.device_id, d.acked_seq
        ),
        floors as (
          select c.user_id, least(
            min(c.acked_seq),
            (select min(o.acked_seq) from devices o
              where o.user_id = c.user_id
                and o.device_id <> all(array(select c2.device_id from cur c2 where c2.user_id = c.user_id)))
          ) as seq
          from cur c
          group by c.user_id
        )
        delete from inbox i using floors f
        where i.user_id = f.user_id and i.seq <= f.seq`.execute(this.db);
    } catch (err) {
      throw toChatError(err);
    }
  }

  async latestSeqs(userIds: readonly string[]): Promise<Map<string, number>> {
    if (userIds.length === 0) return new Map();
    try {
      const rows = await this.db
        .selectFrom('users')
        .select(['id', 'next_seq'])
        .where('id', 'in', [...userIds])
        .execute();
      return new Map(rows.map((r) => [r.id, Number(r.next_seq) - 1]));
    } catch (err) {
      throw toChatError(err);
    }
  }

  async latestSeq(userId: string): Promise<number> {
    try {
      const row = await this.db
        .selectFrom('users')
        .select('next_seq')
        .where('id', '=', userId)
        .executeTakeFirst();
      return row ? Number(row.next_seq) - 1 : 0;
    } catch (err) {
      throw toChatError(err);
    }
  }

  // ---- chats ----

  async createChat(
    creatorId: string,
    members: readonly string[],
    name: string | null,
    now: number,
  ): Promise<MembershipResult> {
    const all = unique([creatorId, ...members]);
    if (all.length > this.options.maxMembersPerChat) {
      throw new ChatError('LIMIT', `a chat has at most ${this.options.maxMembersPerChat} members`, {
        members: all.length,
      });
    }
    const chatId = randomUUID();
    try {
      const deliveries = await this.db.transaction().execute(async (tx) => {
        await tx
          .insertInto('chats')
          .values({ id: chatId, name, created_by: creatorId, created_at: now })
          .execute();
        const nextSeq = await lockUsers(tx, all);
        // The creator is the chat's first admin.
        await sql`
          insert into chat_members (chat_id, user_id, joined_at, is_admin)
          select ${chatId}, u, ${now}, u = ${creatorId} from unnest(${all}::text[]) as t(u)`.execute(
          tx,
        );
        return appendEvents(
          tx,
          nextSeq,
          chatEvents(all, chatId, { change: 'created', members: all, by: creatorId }, now),
        );
      });
      return { chatId, deliveries };
    } catch (err) {
      throw toChatError(err);
    }
  }

  // ---- messages ----

  send(input: SendInput): Promise<SendResult> {
    if (this.closed) return Promise.reject(new ChatError('UNAVAILABLE', 'store is closed'));
    return new Promise<SendResult>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.counters.sends++;
    });
  }

  async sync(userId: string, after: number, limit: number): Promise<SyncPage> {
    try {
      const { rows } = await sql<SyncRow>`
        select i.seq, i.kind, i.chat_id, i.message_id, i.payload, i.created_at,
               m.sender_id, m.body, m.attachments, m.content_removed_at
        from inbox i left join messages m on m.id = i.message_id
        where i.user_id = ${userId} and i.seq > ${after}
        order by i.seq
        limit ${Math.max(0, Math.floor(limit)) + 1}`.execute(this.db);
      // Read after the events, so latestSeq is never below the last returned seq.
      const latestSeq = await this.latestSeq(userId);
      const more = rows.length > limit;
      const events: InboxEvent[] = [];
      for (const row of more ? rows.slice(0, limit) : rows) {
        const event = toEvent(row);
        if (event) events.push(event);
        else this.options.logger.warn({ userId, seq: row.seq }, 'inbox event without its message');
      }
      return { events, latestSeq, more };
    } catch (err) {
      throw toChatError(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      await this.queue.idle();
      await this.devices.idle();
      await this.db.destroy();
    })();
    return this.closing;
  }

  // ---- group commit ----

  /** Commits a batch and settles its promises; never rejects. */
  private async runBatch(batch: readonly PendingSend[]): Promise<void> {
    this.counters.transactions++;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.length);
    let outcomes: Outcome[];
    const started = performance.now();
    try {
      // One statement, so one transaction (see send-batch.ts).
      outcomes = await sendBatch(
        this.db,
        batch.map((p) => p.input),
      );
      this.counters.commits++;
      this.onBatch?.({
        kind: 'send',
        size: batch.length,
        durationMs: performance.now() - started,
        committed: true,
      });
    } catch (err) {
      this.onBatch?.({
        kind: 'send',
        size: batch.length,
        durationMs: performance.now() - started,
        committed: false,
      });
      const error = toChatError(err);
      if (error.code === 'INTERNAL' && batch.length > 1) {
        // One bad send (say, a body Postgres refuses) must not fail the others: bisect.
        this.options.logger.warn({ err, sends: batch.length }, 'send batch failed, splitting it');
        const half = Math.ceil(batch.length / 2);
        await this.runBatch(batch.slice(0, half));
        await this.runBatch(batch.slice(half));
        return;
      }
      if (error.code === 'INTERNAL') this.options.logger.error({ err }, 'send failed');
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const [i, pending] of batch.entries()) {
      const outcome = outcomes[i];
      if (!outcome) pending.reject(new ChatError('INTERNAL', 'send lost in its batch'));
      else if ('ok' in outcome) pending.resolve(outcome.ok);
      else pending.reject(outcome.err);
    }
  }
}

/**
 * Creates missing users and locks every user row, both in id order, and returns each user's
 * next_seq. Must come after any chat row locks of the transaction.
 */
export async function lockUsers(
  tx: Transaction<Database>,
  userIds: readonly string[],
): Promise<Map<string, number>> {
  await sql`
    insert into users (id)
    select id from unnest(${userIds}::text[]) as t(id) order by id
    on conflict (id) do nothing`.execute(tx);
  const { rows } = await sql<{ id: string; next_seq: string }>`
    select id, next_seq from users where id = any(${userIds}::text[])
    order by id
    for update`.execute(tx);
  return new Map(rows.map((r) => [r.id, Number(r.next_seq)]));
}

/**
 * Numbers the events with each user's next seqs (in array order), inserts them and moves
 * next_seq on, in one statement. The users must be locked by lockUsers.
 */
export async function appendEvents(
  tx: Transaction<Database>,
  nextSeq: Map<string, number>,
  events: readonly NewEvent[],
): Promise<Delivery[]> {
  if (events.length === 0) return [];
  const next = new Map(nextSeq);
  const deliveries: Delivery[] = [];
  const cols = {
    user: [] as string[],
    seq: [] as number[],
    kind: [] as string[],
    chat: [] as string[],
    message: [] as (string | null)[],
    payload: [] as (string | null)[],
    ts: [] as number[],
  };
  for (const e of events) {
    const seq = next.get(e.userId);
    if (seq === undefined) throw new Error(`user ${e.userId} is not locked`);
    next.set(e.userId, seq + 1);
    const event = { ...e.event, seq };
    deliveries.push({ userId: e.userId, event });
    cols.user.push(e.userId);
    cols.seq.push(seq);
    cols.kind.push(event.kind);
    cols.chat.push(event.chatId);
    cols.message.push(e.messageId);
    cols.payload.push(e.payload);
    cols.ts.push(event.ts);
  }
  const bumped = [...next].filter(([id, seq]) => seq !== nextSeq.get(id));
  await sql`
    with bump as (
      update users u set next_seq = v.next_seq
      from unnest(${bumped.map(([id]) => id)}::text[], ${bumped.map(([, seq]) => seq)}::int8[])
        as v(id, next_seq)
      where u.id = v.id
    )
    insert into inbox (user_id, seq, kind, chat_id, message_id, payload, created_at)
    select * from unnest(
      ${cols.user}::text[], ${cols.seq}::int8[], ${cols.kind}::text[], ${cols.chat}::text[],
      ${cols.message}::int8[], ${cols.payload}::jsonb[], ${cols.ts}::int8[])`.execute(tx);
  return deliveries;
}

/**
 * One `chat` event per recipient; the fields beside chatId and ts go to the payload. Membership
 * changes after creation are PgGroupStore's, with their own events.
 */
function chatEvents(
  recipients: readonly string[],
  chatId: string,
  fields: { change: 'created'; members: string[]; by: string },
  now: number,
): NewEvent[] {
  const payload = JSON.stringify(fields);
  return [...recipients].sort().map((userId) => ({
    userId,
    messageId: null,
    payload,
    event: {
      seq: 0,
      kind: 'chat',
      chatId,
      change: fields.change,
      members: fields.members,
      by: fields.by,
      ts: now,
    },
  }));
}

function toEvent(row: SyncRow): InboxEvent | null {
  const seq = Number(row.seq);
  const ts = Number(row.created_at);
  const payload = row.payload ?? {};
  switch (row.kind) {
    case 'message':
      // Retention empties a message only once no event references it; should one still do,
      // its emptied row is not handed out as the message.
      if (row.message_id === null || row.sender_id === null || row.content_removed_at !== null) {
        return null;
      }
      return {
        seq,
        kind: 'message',
        chatId: row.chat_id,
        messageId: row.message_id,
        from: row.sender_id,
        body: row.body,
        attachments: row.attachments ?? [],
        ts,
      };
    case 'chat':
      return {
        seq,
        kind: 'chat',
        chatId: row.chat_id,
        change: payload['change'] as 'created' | 'membersAdded' | 'membersRemoved',
        members: payload['members'] as string[],
        by: payload['by'] as string,
        ...(payload['admin'] === true ? { admin: true as const } : {}),
        ts,
      };
    case 'receipt':
      return {
        seq,
        kind: 'receipt',
        chatId: row.chat_id,
        messageId: String(row.message_id ?? payload['messageId']),
        user: payload['user'] as string,
        status: payload['status'] as 'delivered' | 'read',
        ts,
      };
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
