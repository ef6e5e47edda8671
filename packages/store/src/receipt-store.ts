/**
 * Delivered and read receipts as watermarks (docs/durable-path.md): each chat member has
 * `delivered_upto` (every message up to it reached one of their devices) and `read_upto` (they
 * read every message up to it), moved forward only. The node pushes changes live to the users
 * they concern (`receipts` frames, not inbox events) and records them here in two steps:
 *
 * - the chat step moves the watermarks in chat_members (chat-keyed);
 * - the user step upserts `receipt_marks` for each user to be told (user-keyed), so a device
 *   that was away gets, at its next welcome, the watermarks that moved meanwhile.
 *
 * Delivered watermarks are written lazily (the node coalesces them over seconds); a read is
 * written when it is made. A watermark write lost in a crash is made good by the next one: they
 * are cumulative. Senders with a device that takes receipts as inbox events (protocol v1) get
 * those too (legacy-receipts.ts).
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import { toChatError } from './errors';
import type { Database } from './schema';
import { lockKeys } from './key-locks';
import { EngineRouters, onShard, perShard, reachedSecondShard } from './shard-router';
import type { KeyRouter } from './shard-router';
import { appendReceiptEvents } from './legacy-receipts';
import type { MovedMark } from './legacy-receipts';
import type { Delivery, ReceiptMark } from './types';

/** A reader's delivered watermark in a chat, and the users to tell (senders it covers). */
export interface DeliveredMark {
  readonly chatId: string;
  readonly reader: string;
  readonly upto: string;
  readonly notify: readonly string[];
}

export interface ReadIntent {
  readonly userId: string;
  readonly chatId: string;
  readonly messageId: string;
}

/** A watermark change to push live, and to whom. */
export interface ReceiptNotice extends ReceiptMark {
  readonly notify: readonly string[];
}

export interface ReadBatchResult {
  /** One entry per intent, in order: undefined when it was applied, else why not. */
  readonly outcomes: readonly (ChatError | undefined)[];
  /** The read watermarks that moved, with the users to tell. */
  readonly notices: readonly ReceiptNotice[];
  /** Receipt events appended for senders whose devices take them as events, to be pushed. */
  readonly events: readonly Delivery[];
}

const MESSAGE_ID = /^[0-9]{1,18}$/;

/**
 * @example
 * const receipts = new PgReceiptStore(db);
 * await receipts.recordDelivered([{ chatId, reader: 'bob', upto: messageId, notify: ['alice'] }], Date.now());
 * const { outcomes, notices } = await receipts.markRead([{ userId: 'bob', chatId, messageId }], Date.now());
 */
export class PgReceiptStore {
  /** Plain PostgreSQL or Citus, found out on first use. */
  private readonly routers: EngineRouters;

  constructor(private readonly db: Kysely<Database>) {
    this.routers = EngineRouters.of(db);
  }

  /**
   * Moves delivered watermarks forward and records them for the users to tell; returns the
   * receipt events appended for senders whose devices take them as events (to be pushed).
   */
  async recordDelivered(marks: readonly DeliveredMark[], now: number): Promise<Delivery[]> {
    if (marks.length === 0) return [];
    try {
      const routers = await this.routers.get();
      const moved = await perShard(
        routers.chats,
        marks,
        (m) => m.chatId,
        (group, keys) => moveDelivered(this.db, group, keys),
      );
      const eventUsers = await upsertMarks(
        this.db,
        routers.users,
        marks.flatMap((m) =>
          m.notify.map((user) => ({ user, chatId: m.chatId, reader: m.reader, delivered: m.upto })),
        ),
        now,
      );
      return await appendReceiptEvents(this.db, moved, eventUsers, now, routers);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /**
   * Marks messages read, many requests at once: each intent moves the reader's read (and
   * delivered) watermark in its chat to its message. Per intent: NOT_FOUND for no such chat, or
   * no such message in it (a message retention removed counts if the reader had it delivered),
   * NOT_MEMBER. The users to tell are the senders of the messages the watermark passed (all
   * other members when retention removed those).
   */
  async markRead(intents: readonly ReadIntent[], now: number): Promise<ReadBatchResult> {
    if (intents.length === 0) return { outcomes: [], notices: [], events: [] };
    try {
      const routers = await this.routers.get();
      // One transaction per chat shard (one on plain PostgreSQL), outcomes back in order.
      const steps = await perShard(
        routers.chats,
        intents.map((intent, index) => ({ intent, index })),
        (x) => x.intent.chatId,
        (group, keys) => readIsolated(this.db, group, keys),
      );
      const outcomes: (ChatError | undefined)[] = new Array(intents.length);
      for (const step of steps) {
        step.outcomes.forEach((outcome, k) => (outcomes[step.indexes[k]!] = outcome));
      }
      const notices = steps.flatMap((step) => step.notices);
      const moved = steps.flatMap((step) => step.moved);
      const eventUsers = await upsertMarks(
        this.db,
        routers.users,
        notices.flatMap((n) =>
          n.notify.map((user) => ({ user, chatId: n.chatId, reader: n.reader, read: n.read! })),
        ),
        now,
      );
      const events = await appendReceiptEvents(this.db, moved, eventUsers, now, routers);
      return { outcomes, notices, events };
    } catch (err) {
      throw toChatError(err);
    }
  }
}

/**
 * The chat step of a read batch: watermarks moved in chat_members, notices computed, and the
 * moves (delivered first, for a read of messages not delivered yet) for receipt events.
 */
type ReadStep = Awaited<ReturnType<typeof readStep>>;

/**
 * One shard's read intents in one transaction. When Postgres refuses the statement itself (not
 * UNAVAILABLE: one intent carrying what the database cannot take), the transaction wrote
 * nothing; the group is split in halves and retried, so only the bad intent fails (with the
 * error as its outcome) and the other users' reads of the batch go through.
 */
async function readIsolated(
  db: Kysely<Database>,
  group: readonly { intent: ReadIntent; index: number }[],
  keys: readonly string[] | null,
): Promise<(ReadStep & { indexes: number[] })[]> {
  try {
    const step = await db.transaction().execute((tx) =>
      readStep(
        tx,
        group.map((x) => x.intent),
        keys,
      ),
    );
    return [{ indexes: group.map((x) => x.index), ...step }];
  } catch (err) {
    const error = toChatError(err);
    if (error.code !== 'INTERNAL' || reachedSecondShard(err)) throw err;
    if (group.length === 1)
      return [{ indexes: [group[0]!.index], outcomes: [error], notices: [], moved: [] }];
    const half = Math.ceil(group.length / 2);
    const keysOf = (part: typeof group): string[] | null =>
      keys === null ? null : unique(part.map((x) => x.intent.chatId));
    const first = group.slice(0, half);
    const second = group.slice(half);
    return [
      ...(await readIsolated(db, first, keysOf(first))),
      ...(await readIsolated(db, second, keysOf(second))),
    ];
  }
}

async function readStep(
  tx: Transaction<Database>,
  intents: readonly ReadIntent[],
  keys: readonly string[] | null,
): Promise<Omit<ReadBatchResult, 'events'> & { moved: MovedMark[] }> {
  const chatIds = unique(intents.map((i) => i.chatId)).sort();
  // Membership stays as read until commit (changes hold the chat's lock exclusively).
  await lockKeys(tx, 'chat', chatIds, 'shared');
  const { rows: chats } = await sql<{ id: string }>`
    select id from chats where id = any(${chatIds}::text[])`.execute(tx);
  const chatExists = new Set(chats.map((c) => c.id));
  // The readers' rows, in key order like every statement that moves watermarks: the values
  // read next are the ones this transaction moves from (each message is passed once).
  await sql`
    select 1 from chat_members cm
    join unnest(${intents.map((i) => i.chatId)}::text[], ${intents.map((i) => i.userId)}::text[])
      as t(chat_id, user_id) on cm.chat_id = t.chat_id and cm.user_id = t.user_id
    where true${onShard('cm.chat_id', keys)}
    order by cm.chat_id, cm.user_id
    for update of cm`.execute(tx);
  const { rows: memberRows } = await sql<{
    chat_id: string;
    user_id: string;
    read_upto: string;
    delivered_upto: string;
  }>`
    select chat_id, user_id, read_upto, delivered_upto from chat_members
    where chat_id = any(${chatIds}::text[])`.execute(tx);
  const member = new Map(memberRows.map((m) => [`${m.chat_id}\u0000${m.user_id}`, m]));
  const wellFormed = intents.filter((i) => MESSAGE_ID.test(i.messageId));
  const { rows: found } = await sql<{ chat_id: string; id: string }>`
    select m.chat_id, m.id::text as id from messages m
    join unnest(${wellFormed.map((i) => i.chatId)}::text[], ${wellFormed.map((i) => i.messageId)}::int8[])
      as t(chat_id, id) on m.chat_id = t.chat_id and m.id = t.id
    where m.kind = 'message'${onShard('m.chat_id', keys)}`.execute(tx);
  const exists = new Set(found.map((f) => `${f.chat_id}\u0000${f.id}`));

  const outcomes: (ChatError | undefined)[] = [];
  const wanted = new Map<
    string,
    { chatId: string; reader: string; from: bigint; deliveredFrom: bigint; upto: bigint }
  >();
  for (const intent of intents) {
    const m = member.get(`${intent.chatId}\u0000${intent.userId}`);
    if (!chatExists.has(intent.chatId)) {
      outcomes.push(new ChatError('NOT_FOUND', 'no such chat', { chatId: intent.chatId }));
      continue;
    }
    if (m === undefined) {
      outcomes.push(
        new ChatError('NOT_MEMBER', 'not a member of this chat', { chatId: intent.chatId }),
      );
      continue;
    }
    const id = MESSAGE_ID.test(intent.messageId) ? BigInt(intent.messageId) : null;
    const known =
      id !== null &&
      (exists.has(`${intent.chatId}\u0000${intent.messageId}`) ||
        id <= BigInt(m.delivered_upto) ||
        id <= BigInt(m.read_upto));
    if (!known) {
      outcomes.push(
        new ChatError('NOT_FOUND', 'no such message in this chat', {
          chatId: intent.chatId,
          messageId: intent.messageId,
        }),
      );
      continue;
    }
    outcomes.push(undefined);
    if (id <= BigInt(m.read_upto)) continue;
    const key = `${intent.chatId}\u0000${intent.userId}`;
    const seen = wanted.get(key);
    if (seen === undefined || id > seen.upto) {
      wanted.set(key, {
        chatId: intent.chatId,
        reader: intent.userId,
        from: BigInt(m.read_upto),
        deliveredFrom: BigInt(m.delivered_upto),
        upto: id,
      });
    }
  }
  if (wanted.size === 0) return { outcomes, notices: [], moved: [] };
  const ranges = [...wanted.values()];
  await sql`
    update chat_members cm set read_upto = greatest(cm.read_upto, r.upto),
      delivered_upto = greatest(cm.delivered_upto, r.upto)
    from unnest(
      ${ranges.map((r) => r.chatId)}::text[], ${ranges.map((r) => r.reader)}::text[],
      ${ranges.map((r) => r.upto.toString())}::int8[]) as r(chat_id, user_id, upto)
    where cm.chat_id = r.chat_id and cm.user_id = r.user_id${onShard('cm.chat_id', keys)}`.execute(
    tx,
  );
  const { rows: senders } = await sql<{ chat_id: string; reader: string; senders: string[] }>`
    select r.chat_id, r.reader, array(
        select distinct m.sender_id from messages m
        where m.chat_id = r.chat_id${onShard('m.chat_id', keys)}
          and m.id > r.from_id and m.id <= r.upto_id
          and m.kind = 'message' and m.sender_id <> r.reader) as senders
    from unnest(
      ${ranges.map((r) => r.chatId)}::text[], ${ranges.map((r) => r.reader)}::text[],
      ${ranges.map((r) => r.from.toString())}::int8[], ${ranges.map((r) => r.upto.toString())}::int8[])
      as r(chat_id, reader, from_id, upto_id)`.execute(tx);
  const sendersOf = new Map(senders.map((s) => [`${s.chat_id}\u0000${s.reader}`, s.senders]));
  const moved: MovedMark[] = [];
  const notices = ranges.map((r): ReceiptNotice => {
    const found = sendersOf.get(`${r.chatId}\u0000${r.reader}`) ?? [];
    const upto = r.upto.toString();
    const move = { chatId: r.chatId, reader: r.reader, upto, senders: found };
    if (r.deliveredFrom < r.upto) {
      moved.push({ ...move, status: 'delivered', from: r.deliveredFrom.toString() });
    }
    moved.push({ ...move, status: 'read', from: r.from.toString() });
    const others = memberRows
      .filter((m) => m.chat_id === r.chatId && m.user_id !== r.reader)
      .map((m) => m.user_id);
    return {
      chatId: r.chatId,
      reader: r.reader,
      delivered: upto,
      read: upto,
      notify: found.length > 0 ? found : others,
    };
  });
  return { outcomes, notices, moved };
}

/**
 * Moves delivered watermarks forward (rows locked in key order) and returns the moves, each
 * from the value it had: the users to tell are the senders the caller named.
 */
async function moveDelivered(
  db: Kysely<Database>,
  marks: readonly DeliveredMark[],
  keys: readonly string[] | null,
): Promise<MovedMark[]> {
  const { rows } = await sql<{ chat_id: string; reader: string; from_id: string; upto: string }>`
    with m as (
      select chat_id, user_id, max(upto) as upto from unnest(
        ${marks.map((m) => m.chatId)}::text[], ${marks.map((m) => m.reader)}::text[],
        ${marks.map((m) => m.upto)}::int8[]) as t(chat_id, user_id, upto)
      group by chat_id, user_id
    ),
    old as (
      select cm.chat_id, cm.user_id, cm.delivered_upto as from_id, m.upto
      from chat_members cm join m on m.chat_id = cm.chat_id and m.user_id = cm.user_id
      where cm.delivered_upto < m.upto${onShard('cm.chat_id', keys)}
      order by cm.chat_id, cm.user_id
      for update of cm
    ),
    moved as (
      update chat_members cm set delivered_upto = o.upto
      from old o where cm.chat_id = o.chat_id and cm.user_id = o.user_id${onShard('cm.chat_id', keys)}
      returning cm.chat_id, cm.user_id
    )
    select o.chat_id, o.user_id as reader, o.from_id::text as from_id, o.upto::text as upto
    from old o join moved using (chat_id, user_id)`.execute(db);
  const senders = new Map<string, Set<string>>();
  for (const m of marks) {
    const key = `${m.chatId}\u0000${m.reader}`;
    const set = senders.get(key) ?? new Set<string>();
    for (const user of m.notify) set.add(user);
    senders.set(key, set);
  }
  return rows.map((r) => ({
    chatId: r.chat_id,
    reader: r.reader,
    status: 'delivered' as const,
    from: r.from_id,
    upto: r.upto,
    senders: [...(senders.get(`${r.chat_id}\u0000${r.reader}`) ?? [])],
  }));
}

/**
 * The user step: what each user is to be told, one row per (user, chat, reader). Returns the
 * users among them with a device that takes receipts as inbox events.
 */
async function upsertMarks(
  db: Kysely<Database>,
  router: KeyRouter,
  marks: readonly {
    user: string;
    chatId: string;
    reader: string;
    delivered?: string;
    read?: string;
  }[],
  now: number,
): Promise<Set<string>> {
  if (marks.length === 0) return new Set();
  // One row per key, in key order (no two statements lock them in different orders).
  const merged = new Map<
    string,
    { user: string; chatId: string; reader: string; d: bigint; r: bigint }
  >();
  for (const m of marks) {
    const key = `${m.user}\u0000${m.chatId}\u0000${m.reader}`;
    const row = merged.get(key) ?? {
      user: m.user,
      chatId: m.chatId,
      reader: m.reader,
      d: 0n,
      r: 0n,
    };
    if (m.delivered !== undefined && BigInt(m.delivered) > row.d) row.d = BigInt(m.delivered);
    if (m.read !== undefined && BigInt(m.read) > row.r) row.r = BigInt(m.read);
    if (row.r > row.d) row.d = row.r;
    merged.set(key, row);
  }
  const rows = [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, r]) => r);
  const told = await perShard(
    router,
    rows,
    (r) => r.user,
    async (group, keys) =>
      keys === null
        ? upsertMarksStatement(db, group, now)
        : upsertMarksOnShard(db, group, keys, now),
  );
  return new Set(told.filter((t) => t.events).map((t) => t.user_id));
}

interface MarkRow {
  readonly user: string;
  readonly chatId: string;
  readonly reader: string;
  readonly d: bigint;
  readonly r: bigint;
}

/** Plain PostgreSQL: one statement upserts the marks and reads who takes receipt events. */
async function upsertMarksStatement(
  db: Kysely<Database>,
  group: readonly MarkRow[],
  now: number,
): Promise<{ user_id: string; events: boolean }[]> {
  const { rows } = await sql<{ user_id: string; events: boolean }>`
    with up as (
      insert into receipt_marks (user_id, chat_id, reader, delivered_upto, read_upto, updated_at)
      select user_id, chat_id, reader, d, r, ${now}::int8 from unnest(
        ${group.map((r) => r.user)}::text[], ${group.map((r) => r.chatId)}::text[],
        ${group.map((r) => r.reader)}::text[], ${group.map((r) => r.d.toString())}::int8[],
        ${group.map((r) => r.r.toString())}::int8[]) as t(user_id, chat_id, reader, d, r)
      on conflict (user_id, chat_id, reader) do update set
        delivered_upto = greatest(receipt_marks.delivered_upto, excluded.delivered_upto),
        read_upto = greatest(receipt_marks.read_upto, excluded.read_upto),
        updated_at = excluded.updated_at
      returning user_id
    )
    select up.user_id, exists(
      select 1 from devices d where d.user_id = up.user_id and d.receipt_events
    ) as events
    from up`.execute(db);
  return rows;
}

/**
 * Citus: the marks of one user shard as a multi-row VALUES insert (Citus runs it on the shard;
 * an INSERT ... SELECT over the call's arrays would be planned in pieces and committed on every
 * server), then who takes receipt events, from the same shard.
 */
async function upsertMarksOnShard(
  db: Kysely<Database>,
  group: readonly MarkRow[],
  keys: readonly string[],
  now: number,
): Promise<{ user_id: string; events: boolean }[]> {
  const values = group.map(
    (r) =>
      sql`(${r.user}, ${r.chatId}, ${r.reader}, ${r.d.toString()}::int8, ${r.r.toString()}::int8, ${now}::int8)`,
  );
  const { rows: upserted } = await sql<{ user_id: string }>`
    insert into receipt_marks (user_id, chat_id, reader, delivered_upto, read_upto, updated_at)
    values ${sql.join(values)}
    on conflict (user_id, chat_id, reader) do update set
      delivered_upto = greatest(receipt_marks.delivered_upto, excluded.delivered_upto),
      read_upto = greatest(receipt_marks.read_upto, excluded.read_upto),
      updated_at = excluded.updated_at
    returning user_id`.execute(db);
  const users = unique(upserted.map((u) => u.user_id));
  if (users.length === 0) return [];
  const { rows } = await sql<{ user_id: string; events: boolean }>`
    select d.user_id, bool_or(d.receipt_events) as events from devices d
    where d.user_id = any(${users}::text[])${onShard('d.user_id', keys)}
    group by d.user_id`.execute(db);
  const events = new Map(rows.map((r) => [r.user_id, r.events]));
  return users.map((u) => ({ user_id: u, events: events.get(u) === true }));
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
