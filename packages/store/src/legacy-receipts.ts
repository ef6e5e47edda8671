/**
 * Receipts as protocol v1 had them, for devices that did not announce the `receipt-marks`
 * feature: a `receipt` event in the sender's inbox per message, reader and moment.
 *
 * Watermarks (receipt-store.ts) say how far each reader got. When one moves, the messages it
 * passed are listed per sender (a read of one chat's rows) and, for senders with such a
 * device, the events are appended (a user step). A watermark passes each message once, so each
 * event is appended once. A node that dies between moving the watermark and appending loses
 * those events; the watermark itself, and the `receipts` frames, still tell newer devices.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from './schema';
import type { Delivery } from './types';
import { appendEvents } from './user-step';
import { WHOLE_BATCH, onShard, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';
import { compareMessageIds } from '@chat/protocol';
import type { FanoutEvent } from './user-step';

/** A watermark that moved over the messages in (from, upto] of a chat. */
export interface MovedMark {
  readonly chatId: string;
  readonly reader: string;
  readonly status: 'delivered' | 'read';
  /** The watermark before (exclusive). */
  readonly from: string;
  readonly upto: string;
  /** Senders of messages in the range: the users to tell. */
  readonly senders: readonly string[];
}

/** Most events per move and sender, the newest messages first, as protocol v1 bounded them. */
const MAX_EVENTS_PER_MOVE = 500;

/**
 * Appends the receipt events of `moved` for the senders in `eventUsers` (users with a device
 * that takes receipts as events); returns the appended events, to be pushed. Moves are applied
 * in order (a read that also moved the delivered watermark: delivered first).
 */
export async function appendReceiptEvents(
  db: Kysely<Database>,
  moved: readonly MovedMark[],
  eventUsers: ReadonlySet<string>,
  now: number,
  routers: { readonly chats: KeyRouter; readonly users: KeyRouter } = {
    chats: WHOLE_BATCH,
    users: WHOLE_BATCH,
  },
): Promise<Delivery[]> {
  const wanted = moved.flatMap((m) =>
    m.senders
      .filter((sender) => sender !== m.reader && eventUsers.has(sender))
      .map((sender) => ({ ...m, sender })),
  );
  if (wanted.length === 0) return [];
  // Per chat shard on Citus: each statement reads one shard's messages.
  const indexed = wanted.map((w, index) => ({ ...w, index }));
  const rows = (
    await perShard(
      routers.chats,
      indexed,
      (w) => w.chatId,
      async (group, keys) => {
        const { rows: found } = await sql<{ i: number; id: string }>`
    select r.i::int as i, m.id::text as id
    from unnest(
        ${group.map((w) => w.chatId)}::text[], ${group.map((w) => w.sender)}::text[],
        ${group.map((w) => w.from)}::int8[], ${group.map((w) => w.upto)}::int8[])
      with ordinality as r(chat_id, sender, from_id, upto_id, i)
    cross join lateral (
      select m.id from messages m
      where m.chat_id = r.chat_id${onShard('m.chat_id', keys)}
        and m.id > r.from_id and m.id <= r.upto_id
        and m.sender_id = r.sender and m.kind = 'message'
      order by m.id desc
      limit ${MAX_EVENTS_PER_MOVE}
    ) m
    order by r.i, m.id`.execute(db);
        return found.map((f) => ({ i: group[f.i - 1]!.index + 1, id: f.id }));
      },
    )
  ).sort((a, b) => a.i - b.i || compareMessageIds(a.id, b.id));
  const events = rows.map((row): FanoutEvent => {
    const w = wanted[row.i - 1]!;
    return {
      userId: w.sender,
      messageId: row.id,
      origin: null,
      event: {
        seq: 0,
        kind: 'receipt',
        chatId: w.chatId,
        messageId: row.id,
        user: w.reader,
        status: w.status,
        ts: now,
      },
    };
  });
  return appendEvents(db, events, routers.users);
}
