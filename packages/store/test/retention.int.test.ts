/**
 * Retention's statements against Postgres: a message whose fan-out is done loses its text
 * (the recipients' inboxes hold their own copies) but keeps what read receipts need until
 * every recipient has read it or the retention period ends; an attachment object stays until
 * every recipient device fetched it or a grace period after delivery passed, never past the
 * retention period; expiring events and devices never lets a seq be given out twice. The job
 * that runs them on a node is tested in packages/node.
 */
import { sql } from 'kysely';
import type { AttachmentRef } from '@chat/protocol';
import { PgAttachmentStore, PgGroupStore, PgReceiptStore, PgRetentionStore } from '../src/index';
import type { DeliveredMark, PgChatStore } from '../src/index';
import { inboxOf, sendInput, settle, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let groups: PgGroupStore;
let receipts: PgReceiptStore;
let retention: PgRetentionStore;

beforeAll(async () => {
  fx = await storeFixture('retention');
  store = await fx.store();
  groups = new PgGroupStore(fx.db, { maxMembersPerChat: 100 }, store);
  receipts = new PgReceiptStore(fx.db);
  retention = new PgRetentionStore(fx.db);
});
afterAll(() => fx.close());

/** A chat whose members each have one device. */
async function chatOf(creator: string, others: readonly string[], now = Date.now()) {
  for (const user of [creator, ...others]) await store.connectDevice(user, 'd1', now);
  return (await store.createChat(creator, others, null, now)).chatId;
}

/**
 * Every device of `users` acks everything up to `upto` (their latest seq by default), as the
 * node writes it: the delivered watermarks of the messages acked, then the cursors.
 */
async function ackAll(
  users: readonly string[],
  now = Date.now(),
  upto?: ReadonlyMap<string, number>,
): Promise<void> {
  await settle(store);
  const marks: DeliveredMark[] = [];
  const cursors = [];
  for (const userId of users) {
    const seq = upto?.get(userId) ?? (await store.latestSeq(userId));
    const { rows } = await sql<{ chat_id: string; upto: string; senders: string[] }>`
      select chat_id, max(message_id)::text as upto, array_agg(distinct sender_id) as senders
      from inbox where user_id = ${userId} and kind = 'message' and seq <= ${seq}
        and sender_id <> ${userId}
      group by chat_id`.execute(fx.db);
    for (const r of rows)
      marks.push({ chatId: r.chat_id, reader: userId, upto: r.upto, notify: r.senders });
    cursors.push({ userId, deviceId: 'd1', seq });
  }
  await receipts.recordDelivered(marks, now);
  await store.writeCursors(cursors, now);
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
    from messages where id = ${id}::int8 and kind = 'message'`.execute(fx.db);
  return rows[0];
}

it('empties a fanned-out message, keeps it for read receipts, and deletes it once all have read it', async () => {
  const chatId = await chatOf('e-alice', ['e-bob', 'e-carol']);
  const sent = await store.send(sendInput('e-alice', chatId, { body: 'hi' }));
  const id = sent.messageId;

  // Its fan-out is done: the inboxes have their own copies, the text goes (delivered or not).
  await ackAll(['e-alice', 'e-bob']);
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

  // Bob reads it much later: it works, and alice is told (its sender is known from the row).
  const bobRead = await receipts.markRead([{ userId: 'e-bob', chatId, messageId: id }], 10);
  expect(bobRead.outcomes).toEqual([undefined]);
  expect(bobRead.notices.map((n) => [n.reader, n.read, n.notify])).toEqual([
    ['e-bob', id, ['e-alice']],
  ]);
  await cleanDelivered();
  expect(await messageRow(id)).toBeDefined(); // carol has not read it

  const carolRead = await receipts.markRead([{ userId: 'e-carol', chatId, messageId: id }], 11);
  expect(carolRead.notices.map((n) => n.notify)).toEqual([['e-alice']]);
  await cleanDelivered();
  expect(await messageRow(id)).toBeUndefined();

  // A late read of it (bob's other device) has nothing left to do; it is no error. Someone
  // who never had it (another chat) still gets NOT_FOUND.
  const late = await receipts.markRead([{ userId: 'e-bob', chatId, messageId: id }], 12);
  expect(late).toEqual({ outcomes: [undefined], notices: [], events: [] });
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
  // Bob reads it on the device that got it before the ack was written; zoe joined after it.
  const read = await receipts.markRead(
    [{ userId: 'w-bob', chatId, messageId: sent.messageId }],
    sentAt + 1500,
  );
  expect(read.notices.map((n) => [n.delivered, n.read])).toEqual([
    [sent.messageId, sent.messageId],
  ]);
  await ackAll(['w-alice', 'w-bob', 'w-zoe']);
  await cleanDelivered();
  expect(await messageRow(sent.messageId)).toBeUndefined();
});

it('keeps an attachment past the read until every recipient device fetched it, or the grace after delivery, never past retention', async () => {
  const attachments = new PgAttachmentStore(fx.db);
  const key = (name: string): string => `u/a-alice/${name}-0123456789abcdef`;
  const ref = (name: string): AttachmentRef => ({ key: key(name), mime: 'image/png', size: 10 });
  const chatId = await chatOf('a-alice', ['a-bob']);
  await store.connectDevice('a-bob', 'd2', Date.now());
  const queued = async (): Promise<string[]> =>
    (
      await sql<{ key: string }>`
        select key from media_deletions where key like 'u/a-alice/%' order by key`.execute(fx.db)
    ).rows.map((r) => r.key);
  const indexed = async (): Promise<string[]> =>
    (
      await sql<{ key: string }>`
        select key from message_attachments where key like 'u/a-alice/%' order by key`.execute(
        fx.db,
      )
    ).rows.map((r) => r.key);
  /** One release pass (the job's step after cleanDelivered); returns how many rows went. */
  const release = async (now: number, graceMs = 60_000): Promise<number> => {
    let released = 0;
    for (let after = ''; ;) {
      const batch = await retention.releaseAttachments(after, now, graceMs, 1000);
      released += batch.released;
      if (batch.lastPosition === null) return released;
      after = batch.lastPosition;
    }
  };

  const photo = await store.send(
    sendInput('a-alice', chatId, { body: null, attachments: [ref('photo')] }),
  );
  await store.fanoutIdle();
  // Not delivered to bob yet: nothing goes, however long it waits.
  expect(await release(Date.now() + 3_600_000)).toBe(0);

  // Bob's phone comes online, acks and reads it before it downloads; the row goes, the
  // attachment stays indexed (a download URL still works) and nothing is queued.
  await ackAll(['a-bob']);
  await receipts.markRead([{ userId: 'a-bob', chatId, messageId: photo.messageId }], 5);
  await cleanDelivered();
  expect(await messageRow(photo.messageId)).toBeUndefined();
  expect(await release(Date.now())).toBe(0);
  expect(await indexed()).toEqual([key('photo')]);
  expect(await queued()).toEqual([]);
  expect(await attachments.access('a-bob', key('photo'))).toBe('member');

  // The phone fetches it: the laptop has not yet, so it stays; once the laptop has, it goes.
  await attachments.recordFetch('a-bob', 'd1', key('photo'), Date.now());
  await attachments.recordFetch('a-alice', 'd1', key('photo'), Date.now());
  expect(await release(Date.now())).toBe(0);
  await attachments.recordFetch('a-bob', 'd2', key('photo'), Date.now());
  expect(await release(Date.now())).toBe(1);
  expect(await indexed()).toEqual([]);
  expect(await queued()).toEqual([key('photo')]);

  // Delivered, never fetched: it goes once the grace period after delivery has passed.
  const clip = await store.send(
    sendInput('a-alice', chatId, { body: null, attachments: [ref('clip')] }),
  );
  await ackAll(['a-bob']);
  const deliveredSeenAt = Date.now();
  expect(await release(deliveredSeenAt, 1000)).toBe(0);
  expect(await release(deliveredSeenAt + 999, 1000)).toBe(0);
  expect(await release(deliveredSeenAt + 1000, 1000)).toBe(1);
  expect(await queued()).toEqual([key('clip'), key('photo')]);
  expect(await messageRow(clip.messageId)).toBeDefined(); // the row waits for bob's read

  // Never delivered, never fetched: the retention period ends it all the same.
  const oldAt = 2_000;
  const away = await chatOf('a-alice', ['a-erin'], oldAt);
  await store.send(
    sendInput('a-alice', away, { body: null, attachments: [ref('old')], now: oldAt + 1 }),
  );
  await cleanDelivered(); // the chat's creation goes; the message waits for erin
  expect(await release(Date.now())).toBe(0);
  expect(await retention.deleteExpiredMessages(oldAt + 2, 100)).toEqual({ messages: 1, keys: 1 });
  expect(await queued()).toEqual([key('clip'), key('old'), key('photo')]);
  expect(await indexed()).toEqual([]);
});

it('deletes an emptied message at the retention period, read or not', async () => {
  const oldAt = 1_000;
  const chatId = await chatOf('x-alice', ['x-bob'], oldAt);
  const sent = await store.send(sendInput('x-alice', chatId, { now: oldAt }));
  await ackAll(['x-alice', 'x-bob']);
  await cleanDelivered();
  expect(await messageRow(sent.messageId)).toMatchObject({ body: null });

  // (The chat's creation went already: a change is kept only until it is fanned out.)
  expect(await retention.deleteExpiredMessages(oldAt + 1, 100)).toEqual({ messages: 1, keys: 0 });
  expect(await messageRow(sent.messageId)).toBeUndefined();
});

it('works in windows of at most `limit` messages', async () => {
  const chatId = await chatOf('b-alice', ['b-bob'], 5_000);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await store.send(sendInput('b-alice', chatId, { now: 5_001 + i }))).messageId);
  }
  await ackAll(['b-alice', 'b-bob']);
  const now = Date.now();
  // The window starts after the chat's creation (at 5000).
  const batch = await retention.cleanDelivered(`5000:${chatId}:9999999999999999`, now + 1, now, 2);
  expect(batch).toEqual({ lastId: `5002:${chatId}:${ids[1]}`, emptied: 2, deleted: 0 });
  expect((await messageRow(ids[2]!))?.content_removed_at).toBeNull();
  expect(await retention.cleanDelivered(batch.lastId!, now + 1, now, 2)).toMatchObject({
    emptied: 1,
  });
});

it('leaves a message alone until every node fanned out what it stored before it', async () => {
  const chatId = await chatOf('f-alice', ['f-bob']);
  const sent = await store.send(sendInput('f-alice', chatId));
  await ackAll(['f-alice', 'f-bob']);
  // Another node's mark is behind this message: it may still owe a fan-out from before it.
  await sql`insert into fanout_marks (node_id, upto, heartbeat_at) values ('slow', 1, ${Date.now()})`.execute(
    fx.db,
  );
  try {
    await cleanDelivered();
    expect(await messageRow(sent.messageId)).toMatchObject({ content_removed_at: null });
  } finally {
    await sql`delete from fanout_marks where node_id = 'slow'`.execute(fx.db);
  }
  await cleanDelivered();
  expect(await messageRow(sent.messageId)).toMatchObject({ body: null });
});

it('never gives a seq out twice after expiring events or devices', async () => {
  const chatId = await chatOf('q-alice', ['q-bob'], 1_000);
  for (let i = 0; i < 3; i++) await store.send(sendInput('q-alice', chatId, { now: 1_000 + i }));
  await settle(store);
  expect(await store.latestSeq('q-bob')).toBe(4);
  // Every event of bob's expires (nobody acked them): the next one still continues at 5.
  expect(await retention.deleteExpiredInbox(2_000, 100)).toBeGreaterThanOrEqual(4);
  expect(await inboxOf(fx.db, 'q-bob')).toEqual([]);
  expect(await store.latestSeq('q-bob')).toBe(4);
  await store.send(sendInput('q-alice', chatId, { now: 3_000 }));
  await store.fanoutIdle();
  expect((await inboxOf(fx.db, 'q-bob')).map((e) => e.seq)).toEqual([5]);

  // Bob's only device acked everything and the events went; then the device expires.
  await ackAll(['q-bob']);
  expect(await inboxOf(fx.db, 'q-bob')).toEqual([]);
  const gone = await retention.expireDevices(Number.MAX_SAFE_INTEGER, Date.now(), 1000);
  expect(gone.devices).toBeGreaterThanOrEqual(1);
  expect(await store.latestSeq('q-bob')).toBe(5);
  await store.send(sendInput('q-alice', chatId));
  await store.fanoutIdle();
  expect((await inboxOf(fx.db, 'q-bob')).map((e) => e.seq)).toEqual([6]);
});
