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
 * are cumulative.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import { toChatError } from './errors';
import type { Database } from './schema';
import type { ReceiptMark } from './types';

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
}

const MESSAGE_ID = /^[0-9]{1,18}$/;

/**
 * @example
 * const receipts = new PgReceiptStore(db);
 * await receipts.recordDelivered([{ chatId, reader: 'bob', upto: messageId, notify: ['alice'] }], Date.now());
 * const { outcomes, notices } = await receipts.markRead([{ userId: 'bob', chatId, messageId }], Date.now());
 */
export class PgReceiptStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Moves delivered watermarks forward and records them for the users to tell. */
  async recordDelivered(marks: readonly DeliveredMark[], now: number): Promise<void> {
    if (marks.length === 0) return;
    try {
      await sql`
        update chat_members cm set delivered_upto = greatest(cm.delivered_upto, m.upto)
        from (
          select chat_id, user_id, max(upto) as upto from unnest(
            ${marks.map((m) => m.chatId)}::text[], ${marks.map((m) => m.reader)}::text[],
            ${marks.map((m) => m.upto)}::int8[]) as t(chat_id, user_id, upto)
          group by chat_id, user_id
        ) m
        where cm.chat_id = m.chat_id and cm.user_id = m.user_id`.execute(this.db);
      await upsertMarks(
        this.db,
        marks.flatMap((m) =>
          m.notify.map((user) => ({ user, chatId: m.chatId, reader: m.reader, delivered: m.upto })),
        ),
        now,
      );
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
    if (intents.length === 0) return { outcomes: [], notices: [] };
    try {
      const result = await this.db.transaction().execute((tx) => readStep(tx, intents));
      await upsertMarks(
        this.db,
        result.notices.flatMap((n) =>
          n.notify.map((user) => ({ user, chatId: n.chatId, reader: n.reader, read: n.read! })),
        ),
        now,
      );
      return result;
    } catch (err) {
      throw toChatError(err);
    }
  }
}

/** The chat step of a read batch: watermarks moved in chat_members, notices computed. */
async function readStep(
  tx: Transaction<Database>,
  intents: readonly ReadIntent[],
): Promise<ReadBatchResult> {
  const chatIds = unique(intents.map((i) => i.chatId)).sort();
  // Membership stays as read until commit (changes lock the chat FOR UPDATE).
  const { rows: chats } = await sql<{ id: string }>`
    select id from chats where id = any(${chatIds}::text[]) order by id for key share`.execute(tx);
  const chatExists = new Set(chats.map((c) => c.id));
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
    where m.kind = 'message'`.execute(tx);
  const exists = new Set(found.map((f) => `${f.chat_id}\u0000${f.id}`));

  const outcomes: (ChatError | undefined)[] = [];
  const wanted = new Map<string, { chatId: string; reader: string; from: bigint; upto: bigint }>();
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
        upto: id,
      });
    }
  }
  if (wanted.size === 0) return { outcomes, notices: [] };
  const ranges = [...wanted.values()];
  await sql`
    update chat_members cm set read_upto = greatest(cm.read_upto, r.upto),
      delivered_upto = greatest(cm.delivered_upto, r.upto)
    from unnest(
      ${ranges.map((r) => r.chatId)}::text[], ${ranges.map((r) => r.reader)}::text[],
      ${ranges.map((r) => r.upto.toString())}::int8[]) as r(chat_id, user_id, upto)
    where cm.chat_id = r.chat_id and cm.user_id = r.user_id`.execute(tx);
  const { rows: senders } = await sql<{ chat_id: string; reader: string; senders: string[] }>`
    select r.chat_id, r.reader, array(
        select distinct m.sender_id from messages m
        where m.chat_id = r.chat_id and m.id > r.from_id and m.id <= r.upto_id
          and m.kind = 'message' and m.sender_id <> r.reader) as senders
    from unnest(
      ${ranges.map((r) => r.chatId)}::text[], ${ranges.map((r) => r.reader)}::text[],
      ${ranges.map((r) => r.from.toString())}::int8[], ${ranges.map((r) => r.upto.toString())}::int8[])
      as r(chat_id, reader, from_id, upto_id)`.execute(tx);
  const sendersOf = new Map(senders.map((s) => [`${s.chat_id}\u0000${s.reader}`, s.senders]));
  const notices = ranges.map((r): ReceiptNotice => {
    const found = sendersOf.get(`${r.chatId}\u0000${r.reader}`) ?? [];
    const others = memberRows
      .filter((m) => m.chat_id === r.chatId && m.user_id !== r.reader)
      .map((m) => m.user_id);
    const upto = r.upto.toString();
    return {
      chatId: r.chatId,
      reader: r.reader,
      delivered: upto,
      read: upto,
      notify: found.length > 0 ? found : others,
    };
  });
  return { outcomes, notices };
}

/** The user step: what each user is to be told, one row per (user, chat, reader). */
async function upsertMarks(
  db: Kysely<Database>,
  marks: readonly {
    user: string;
    chatId: string;
    reader: string;
    delivered?: string;
    read?: string;
  }[],
  now: number,
): Promise<void> {
  if (marks.length === 0) return;
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
  await sql`
    insert into receipt_marks (user_id, chat_id, reader, delivered_upto, read_upto, updated_at)
    select user_id, chat_id, reader, d, r, ${now}::int8 from unnest(
      ${rows.map((r) => r.user)}::text[], ${rows.map((r) => r.chatId)}::text[],
      ${rows.map((r) => r.reader)}::text[], ${rows.map((r) => r.d.toString())}::int8[],
      ${rows.map((r) => r.r.toString())}::int8[]) as t(user_id, chat_id, reader, d, r)
    on conflict (user_id, chat_id, reader) do update set
      delivered_upto = greatest(receipt_marks.delivered_upto, excluded.delivered_upto),
      read_upto = greatest(receipt_marks.read_upto, excluded.read_upto),
      updated_at = excluded.updated_at`.execute(db);
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
