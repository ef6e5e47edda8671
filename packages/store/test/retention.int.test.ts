/**
 * Retention's statements against Postgres: a message delivered to every device loses its
 * content (body, attachments, attachment objects) but keeps what read receipts need until every
 * recipient has read it or the retention period ends; an emptied message is never handed out by
 * sync. The job that runs them on a node is tested in packages/node.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import type { AttachmentRef, ReceiptEvent } from '@chat/protocol';
import { PgGroupStore, PgReceiptStore, PgRetentionStore } from '../src/index';
import type { Delivery, PgChatStore } from '../src/index';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let groups: PgGroupStore;
let receipts: PgReceiptStore;
let retention: PgRetentionStore;

beforeAll(async () => {
  fx = await storeFixture('retention');
  store = fx.store();
  groups = new PgGroupStore(fx.db, { maxMembersPerChat: 100 });
  receipts = new PgReceiptStore(fx.db);
  retention = new PgRetentionStore(fx.db);
});
afterAll(() => fx.close());

/** A chat whose members each have one device. */
async function chatOf(creator: string, others: readonly string[], now = Date.now()) {
  for (const user of [creator, ...others]) await store.connectDevice(user, 'd1', now);
  return (await store.createChat(creator, others, null, now)).chatId;
}

/** Every device of `users` acks everything, as the node's ack flush does (receipts first). */
async function ackAll(users: readonly string[], now = Date.now()): Promise<Delivery[]> {
  const cursors = await Promise.all(
    users.map(async (userId) => ({ userId, deviceId: 'd1', seq: await store.latestSeq(userId) })),
  );
  const delivered = await receipts.recordDelivered(cursors, now);
  await store.ackMany(cursors);
  return delivered;
}

/** One cleanup pass over the delivered messages (no grace period), like the job's step 1. */
async function cleanDelivered(now = Date.now()): Promise<{ emptied: number; deleted: number }> {
  const total = { emptied: 0, deleted: 0 };
  for (let after = '0'; ;) {
    const batch = await retention.cleanDelivered(after, now + 1, now, 1000);
    total.emptied += batch.emptied;
    total.deleted += batch.deleted;
    if (batch.lastId === null) return total;
    after = batch.lastId;
  }
}

interface MessageRow {
  chat_id: string;
  sender_id: string;
  body: string | null;
  attachments: unknown;
  content_removed_at: string | null;
}

async function messageRow(id: string): Promise<MessageRow | undefined> {
  const { rows } = await sql<MessageRow>`
    select chat_id, sender_id, body, attachments, content_removed_at
    from messages where id = ${id}::int8`.execute(fx.db);
  return rows[0];
}

async function count(query: RawBuilder<{ n: string }>): Promise<number> {
  const { rows } = await query.execute(fx.db);
  return Number(rows[0]?.n ?? 0);
}

function receiptsOf(deliveries: readonly Delivery[]): Array<[string, string, string, string]> {
  return deliveries
    .filter((d) => d.event.kind === 'receipt')
    .map((d) => {
      const e = d.event as Omit<ReceiptEvent, 't'>;
      return [d.userId, e.messageId, e.user, e.status];
    });
}

it('empties a delivered message, keeps it for read receipts, and deletes it once all have read it', async () => {
  const chatId = await chatOf('e-alice', ['e-bob', 'e-carol']);
  const sent = await store.send(sendInput('e-alice', chatId, { body: 'hi' }));
  const id = sent.messageId;

  // Not delivered everywhere yet: untouched.
  await cleanDelivered();
  expect(await messageRow(id)).toMatchObject({ body: 'hi', content_removed_at: null });

  const delivered = await ackAll(['e-alice', 'e-bob', 'e-carol']);
  expect(receiptsOf(delivered)).toEqual([
    ['e-alice', id, 'e-bob', 'delivered'],
    ['e-alice', id, 'e-carol', 'delivered'],
  ]);
  const removedAt = Date.now();
  await cleanDelivered(removedAt);
  expect(await messageRow(id)).toEqual({
    chat_id: chatId,
    sender_id: 'e-alice',
    body: null,
    attachments: [],
    content_removed_at: String(removedAt),
  });
  // A pass later, still waiting for readers: left as it is (not emptied again).
  await cleanDelivered(removedAt + 5);
  expect((await messageRow(id))?.content_removed_at).toBe(String(removedAt));

  // Bob reads it much later: it works, and alice gets `read` only (delivered was sent before).
  const bobRead = await receipts.markRead([{ userId: 'e-bob', chatId, messageId: id }], 10);
  expect(bobRead.outcomes).toEqual([undefined]);
  expect(receiptsOf(bobRead.deliveries)).toEqual([['e-alice', id, 'e-bob', 'read']]);
  await cleanDelivered();
  expect(await messageRow(id)).toBeDefined(); // carol has not read it

  const carolRead = await receipts.markRead([{ userId: 'e-carol', chatId, messageId: id }], 11);
  expect(receiptsOf(carolRead.deliveries)).toEqual([['e-alice', id, 'e-carol', 'read']]);
  await cleanDelivered();
  expect(await messageRow(id)).toBeUndefined();
  expect(await count(sql`select count(*) as n from receipts where message_id = ${id}::int8`)).toBe(
    0,
  );

  // A late read of it (bob's other device) has nothing left to do; it is no error. Someone
  // whose read position is not past it (another chat) still gets NOT_FOUND.
  const late = await receipts.markRead([{ userId: 'e-bob', chatId, messageId: id }], 12);
  expect(late).toEqual({ outcomes: [undefined], deliveries: [] });
  const otherChat = await chatOf('e-bob', ['e-dave']);
  const stranger = await receipts.markRead(
    [{ userId: 'e-dave', chatId: otherChat, messageId: id }],
    13,
  );
  expect(stranger.outcomes.map((o) => o?.code)).toEqual(['NOT_FOUND']);
});

it('deletes at once a message already read by everyone it was for; later members do not count', async () => {
  const sentAt = Date.now();
  const chatId = await chatOf('w-alice', ['w-bob'], sentAt);
  const sent = await store.send(sendInput('w-alice', chatId, { now: sentAt }));
  await store.connectDevice('w-zoe', 'd1', sentAt + 1000);
  await groups.addMembers('w-alice', chatId, ['w-zoe'], {}, sentAt + 1000);
  // Bob reads it on the device that got it before the ack flush; zoe joined after it.
  const read = await receipts.markRead(
    [{ userId: 'w-bob', chatId, messageId: sent.messageId }],
    sentAt + 1500,
  );
  expect(receiptsOf(read.deliveries).map((r) => r[3])).toEqual(['delivered', 'read']);
  await ackAll(['w-alice', 'w-bob', 'w-zoe']);
  await cleanDelivered();
  expect(await messageRow(sent.messageId)).toBeUndefined();
});

it('queues attachment objects when the content goes, keeping keys another message carries', async () => {
  const ref = (key: string): AttachmentRef => ({ key, mime: 'image/png', size: 10 });
  const chatId = await chatOf('a-alice', ['a-bob']);
  const first = await store.send(
    sendInput('a-alice', chatId, { body: null, attachments: [ref('a-only'), ref('a-shared')] }),
  );
  const seqs = new Map(first.deliveries.map((d) => [d.userId, d.event.seq]));
  // A second message with the shared key, not delivered yet: only the first one is acked.
  const second = await store.send(
    sendInput('a-alice', chatId, { body: null, attachments: [ref('a-shared')] }),
  );
  const cursors = [...seqs].map(([userId, seq]) => ({ userId, deviceId: 'd1', seq }));
  await receipts.recordDelivered(cursors, Date.now());
  await store.ackMany(cursors);

  await cleanDelivered();
  const queued = async (): Promise<string[]> =>
    (
      await sql<{ key: string }>`
        select key from media_deletions where key like 'a-%' order by key`.execute(fx.db)
    ).rows.map((r) => r.key);
  const indexed = async (): Promise<string[]> =>
    (
      await sql<{ key: string }>`
        select key from message_attachments where key like 'a-%' order by key`.execute(fx.db)
    ).rows.map((r) => r.key);
  expect(await messageRow(first.messageId)).toMatchObject({ attachments: [] });
  expect(await messageRow(second.messageId)).toMatchObject({ attachments: [ref('a-shared')] });
  expect(await queued()).toEqual(['a-only']);
  expect(await indexed()).toEqual(['a-shared']);

  // The shared key goes with the second message's content.
  await ackAll(['a-alice', 'a-bob']);
  await cleanDelivered();
  expect(await queued()).toEqual(['a-only', 'a-shared']);
  expect(await indexed()).toEqual([]);
  await retention.dequeueObjectKeys(['a-only', 'a-shared']);

  // Deleting the emptied rows later queues nothing again.
  await receipts.markRead([{ userId: 'a-bob', chatId, messageId: second.messageId }], 5);
  await cleanDelivered();
  expect(await messageRow(first.messageId)).toBeUndefined();
  expect(await messageRow(second.messageId)).toBeUndefined();
  expect(await queued()).toEqual([]);
});

it('deletes an emptied message at the retention period, read or not', async () => {
  const oldAt = 1_000;
  const chatId = await chatOf('x-alice', ['x-bob'], oldAt);
  const sent = await store.send(sendInput('x-alice', chatId, { now: oldAt }));
  await ackAll(['x-alice', 'x-bob']);
  await cleanDelivered();
  expect(await messageRow(sent.messageId)).toMatchObject({ body: null });

  expect(await retention.deleteExpiredMessages(oldAt + 1, 100)).toEqual({ messages: 1, keys: 0 });
  expect(await messageRow(sent.messageId)).toBeUndefined();
  const read = await receipts.markRead(
    [{ userId: 'x-bob', chatId, messageId: sent.messageId }],
    Date.now(),
  );
  expect(read.outcomes.map((o) => o?.code)).toEqual(['NOT_FOUND']);
});

it('works in windows of at most `limit` messages', async () => {
  const chatId = await chatOf('b-alice', ['b-bob']);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await store.send(sendInput('b-alice', chatId))).messageId);
  await ackAll(['b-alice', 'b-bob']);
  const now = Date.now();
  const after = String(BigInt(ids[0]!) - 1n);
  const batch = await retention.cleanDelivered(after, now + 1, now, 2);
  expect(batch).toEqual({ lastId: ids[1], emptied: 2, deleted: 0, keys: 0 });
  expect((await messageRow(ids[2]!))?.content_removed_at).toBeNull();
  expect(await retention.cleanDelivered(ids[1]!, now + 1, now, 2)).toMatchObject({ emptied: 1 });
});

it('never hands an emptied message out by sync', async () => {
  const chatId = await chatOf('s-alice', ['s-bob']);
  const sent = await store.send(sendInput('s-alice', chatId, { body: 'secret' }));
  await ackAll(['s-alice', 's-bob']);
  await cleanDelivered();
  // Retention empties a message only when no event references it; force one that does.
  const seq = (await store.latestSeq('s-bob')) + 1;
  await sql`
    with bump as (update users set next_seq = ${seq + 1} where id = 's-bob')
    insert into inbox (user_id, seq, kind, chat_id, message_id, created_at)
    values ('s-bob', ${seq}, 'message', ${chatId}, ${sent.messageId}::int8, 1)`.execute(fx.db);
  const page = await store.sync('s-bob', 0, 100);
  expect(page.latestSeq).toBe(seq);
  expect(page.events.filter((e) => e.kind === 'message')).toEqual([]);
});
