/**
 * Issue 7 in the store: last seen never moves backwards (also with two pools racing, like two
 * nodes), receipts are watermarks that only move forward, and group administration rules.
 */
import { sql } from 'kysely';
import { ChatError } from '@chat/protocol';
import { PgGroupStore, PgPresenceStore, PgReceiptStore, createDatabase } from '../src/index';
import type { Delivery, PgChatStore } from '../src/index';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let groups: PgGroupStore;
let receipts: PgReceiptStore;

const pushed: Delivery[] = [];

beforeAll(async () => {
  fx = await storeFixture('presence');
  store = await fx.store();
  store.onDeliveries((d) => pushed.push(...d));
  groups = new PgGroupStore(fx.db, { maxMembersPerChat: 5 }, store);
  receipts = new PgReceiptStore(fx.db);
});
afterAll(() => fx.close());

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatError);
    return err as ChatError;
  }
  throw new Error('expected a rejection');
}

/** A member's watermarks in a chat, as stored. */
async function marks(chatId: string, user: string): Promise<{ delivered: string; read: string }> {
  const { rows } = await sql<{ delivered: string; read: string }>`
    select delivered_upto::text as delivered, read_upto::text as read from chat_members
    where chat_id = ${chatId} and user_id = ${user}`.execute(fx.db);
  return rows[0]!;
}

/** What `user` is to be told about `reader` (receipt_marks). */
async function toldTo(
  user: string,
  chatId: string,
  reader: string,
): Promise<{ delivered: string; read: string } | undefined> {
  const { rows } = await sql<{ delivered: string; read: string }>`
    select delivered_upto::text as delivered, read_upto::text as read from receipt_marks
    where user_id = ${user} and chat_id = ${chatId} and reader = ${reader}`.execute(fx.db);
  return rows[0];
}

describe('last seen', () => {
  it('moves only forward, also when two nodes race', async () => {
    await store.connectDevice('ls-a', 'd1', 1);
    const presence = new PgPresenceStore(fx.db);
    const otherDb = createDatabase(fx.testDb.url, { maxConnections: 4 });
    const other = new PgPresenceStore(otherDb);
    try {
      expect(await presence.touch(['ls-a'], 1000)).toBe(1);
      expect(await presence.touch(['ls-a'], 500)).toBe(0);
      expect((await presence.lastSeenFor('ls-a', 'ls-a')).lastSeen).toBe(1000);
      // 60 writes from two pools in a scrambled order: the highest time wins. (Not more: they
      // all queue for one row's lock, and on Citus each takes a round trip to a worker.)
      const times = Array.from({ length: 60 }, (_, i) => 2000 + ((i * 7919) % 60));
      await Promise.all(times.map((t, i) => (i % 2 === 0 ? presence : other).touch(['ls-a'], t)));
      expect((await presence.lastSeenFor('ls-a', 'ls-a')).lastSeen).toBe(2059);
    } finally {
      await otherDb.destroy();
    }
  });

  it('is visible only to users who share a chat', async () => {
    const presence = new PgPresenceStore(fx.db);
    await store.createChat('ls-b', ['ls-c'], null, 1);
    await presence.touch(['ls-c'], 42);
    const facts = { lastSeen: 42, visibility: 'contacts', blocksAsker: false };
    expect(await presence.lastSeenFor('ls-b', 'ls-c')).toEqual({ shared: true, ...facts });
    expect(await presence.lastSeenFor('ls-stranger', 'ls-c')).toEqual({
      shared: false,
      ...facts,
    });
  });
});

describe('receipts', () => {
  it('moves delivered and read watermarks forward only, and records them for the senders', async () => {
    const { chatId } = await store.createChat('rc-a', ['rc-b', 'rc-c'], null, 1);
    const m1 = await store.send(sendInput('rc-a', chatId));
    const m2 = await store.send(sendInput('rc-a', chatId));

    await receipts.recordDelivered(
      [{ chatId, reader: 'rc-b', upto: m2.messageId, notify: ['rc-a'] }],
      5,
    );
    expect(await marks(chatId, 'rc-b')).toEqual({ delivered: m2.messageId, read: '0' });
    expect(await toldTo('rc-a', chatId, 'rc-b')).toEqual({ delivered: m2.messageId, read: '0' });
    // An older watermark (a late or repeated write) moves nothing back.
    await receipts.recordDelivered(
      [{ chatId, reader: 'rc-b', upto: m1.messageId, notify: ['rc-a'] }],
      6,
    );
    expect(await marks(chatId, 'rc-b')).toEqual({ delivered: m2.messageId, read: '0' });

    // Reading m1 marks it read (and delivered) and tells its sender; m2 stays unread.
    const read = await receipts.markRead([{ userId: 'rc-c', chatId, messageId: m1.messageId }], 7);
    expect(read.outcomes).toEqual([undefined]);
    expect(read.notices).toEqual([
      { chatId, reader: 'rc-c', delivered: m1.messageId, read: m1.messageId, notify: ['rc-a'] },
    ]);
    expect(await marks(chatId, 'rc-c')).toEqual({ delivered: m1.messageId, read: m1.messageId });
    expect(await toldTo('rc-a', chatId, 'rc-c')).toEqual({
      delivered: m1.messageId,
      read: m1.messageId,
    });
    // Reading an earlier message again is a no-op.
    const again = await receipts.markRead([{ userId: 'rc-c', chatId, messageId: m1.messageId }], 8);
    expect(again).toEqual({ outcomes: [undefined], notices: [], events: [] });
    // One read covers everything before it: m2 read means m1 too.
    const both = await receipts.markRead([{ userId: 'rc-b', chatId, messageId: m2.messageId }], 9);
    expect(both.notices.map((n) => [n.reader, n.read, n.notify])).toEqual([
      ['rc-b', m2.messageId, ['rc-a']],
    ]);
    // Nothing per message is written: no receipt events in the sender's inbox.
    await store.fanoutIdle();
    expect((await store.sync('rc-a', 0, 100)).events.filter((e) => e.kind === 'receipt')).toEqual(
      [],
    );
  });

  it('answers NOT_FOUND and NOT_MEMBER per read', async () => {
    const { chatId } = await store.createChat('rr-a', ['rr-b'], null, 1);
    const m = await store.send(sendInput('rr-a', chatId));
    const result = await receipts.markRead(
      [
        { userId: 'rr-b', chatId: 'nope', messageId: m.messageId },
        { userId: 'rr-x', chatId, messageId: m.messageId },
        { userId: 'rr-b', chatId, messageId: 'abc' },
        { userId: 'rr-b', chatId, messageId: '123' }, // no such message in the chat
        { userId: 'rr-b', chatId, messageId: m.messageId },
      ],
      5,
    );
    expect(result.outcomes.map((o) => o?.code)).toEqual([
      'NOT_FOUND',
      'NOT_MEMBER',
      'NOT_FOUND',
      'NOT_FOUND',
      undefined,
    ]);
    expect(result.notices).toHaveLength(1);
  });

  it('fails only the read Postgres refuses, not the other reads of its batch', async () => {
    // Validation refuses U+0000 at the node; injected here to poison the shared statement.
    const { chatId } = await store.createChat('rp-a', ['rp-b', 'rp-c'], null, 1);
    const m = await store.send(sendInput('rp-a', chatId));
    const result = await receipts.markRead(
      [
        { userId: 'rp-b', chatId, messageId: m.messageId },
        { userId: 'rp-x', chatId: 'bad\u0000chat', messageId: m.messageId },
        { userId: 'rp-c', chatId, messageId: m.messageId },
      ],
      5,
    );
    expect(result.outcomes.map((o) => o?.code)).toEqual([undefined, 'INTERNAL', undefined]);
    expect(result.notices.map((n) => n.reader).sort()).toEqual(['rp-b', 'rp-c']);
    expect((await marks(chatId, 'rp-b')).read).toBe(m.messageId);
    expect((await marks(chatId, 'rp-c')).read).toBe(m.messageId);
  });

  it('accepts a read of a message retention removed, when the reader had it delivered', async () => {
    const { chatId } = await store.createChat('rg-a', ['rg-b'], null, 1);
    const m = await store.send(sendInput('rg-a', chatId));
    await receipts.recordDelivered([{ chatId, reader: 'rg-b', upto: m.messageId, notify: [] }], 5);
    await sql`delete from messages where chat_id = ${chatId} and id = ${m.messageId}`.execute(
      fx.db,
    );
    const result = await receipts.markRead([{ userId: 'rg-b', chatId, messageId: m.messageId }], 6);
    expect(result.outcomes).toEqual([undefined]);
    // Its sender is unknown now: every other member is told.
    expect(result.notices.map((n) => n.notify)).toEqual([['rg-a']]);
  });
});

describe('receipt events for devices that take them (protocol v1)', () => {
  /** (status, message) of the receipt events appended for `user`, in seq order. */
  async function receiptRows(user: string): Promise<string[]> {
    const { rows } = await sql<{ status: string; message_id: string; reader: string }>`
      select payload->>'status' as status, message_id::text as message_id,
        payload->>'user' as reader
      from inbox where user_id = ${user} and kind = 'receipt' order by seq`.execute(fx.db);
    return rows.map((r) => `${r.status} ${r.message_id} by ${r.reader}`);
  }

  it('appends one per message and moment for such senders, none for the others', async () => {
    await store.connectDevice('le-old', 'phone', 1); // no options: takes receipt events
    await store.connectDevice('le-new', 'phone', 1, { receiptEvents: false });
    await store.connectDevice('le-reader', 'phone', 1);
    const { chatId } = await store.createChat('le-old', ['le-new', 'le-reader'], null, 1);
    const old1 = await store.send(sendInput('le-old', chatId));
    const new1 = await store.send(sendInput('le-new', chatId));
    const old2 = await store.send(sendInput('le-old', chatId));
    await store.fanoutIdle();

    // The reader's device got the first two: delivered up to new1.
    const delivered = await receipts.recordDelivered(
      [{ chatId, reader: 'le-reader', upto: new1.messageId, notify: ['le-old', 'le-new'] }],
      10,
    );
    expect(delivered.map((d) => [d.userId, d.event.kind, d.event.seq > 0])).toEqual([
      ['le-old', 'receipt', true],
    ]);
    expect(await receiptRows('le-old')).toEqual([`delivered ${old1.messageId} by le-reader`]);
    // The same watermark again passes no message: nothing appended.
    expect(
      await receipts.recordDelivered(
        [{ chatId, reader: 'le-reader', upto: new1.messageId, notify: ['le-old'] }],
        11,
      ),
    ).toEqual([]);

    // Reading the last one: old2 was not delivered yet, so it gets both, delivered first.
    const read = await receipts.markRead(
      [{ userId: 'le-reader', chatId, messageId: old2.messageId }],
      12,
    );
    expect(read.events.every((d) => d.userId === 'le-old')).toBe(true);
    expect(await receiptRows('le-old')).toEqual([
      `delivered ${old1.messageId} by le-reader`,
      `delivered ${old2.messageId} by le-reader`,
      `read ${old1.messageId} by le-reader`,
      `read ${old2.messageId} by le-reader`,
    ]);
    expect(await receiptRows('le-new')).toEqual([]);
    // Their seqs follow the user's other events, without a gap.
    const seqs = read.events.map((d) => d.event.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  });
});

describe('groups', () => {
  it('lets admins add, remove and promote, anyone leave, and keeps the cap', async () => {
    const { chatId } = await store.createChat('gr-a', ['gr-b'], 'g', 1);
    expect((await rejection(groups.addMembers('gr-b', chatId, ['gr-c'], {}, 2))).code).toBe(
      'NOT_MEMBER',
    );
    await groups.addMembers('gr-a', chatId, ['gr-c'], {}, 2);
    const changesOf = (change: string): string[] =>
      pushed
        .filter((d) => d.event.chatId === chatId && d.event.kind === 'chat')
        .filter((d) => d.event.kind === 'chat' && d.event.change === change)
        .map((d) => d.userId)
        .sort();
    expect(changesOf('membersAdded')).toEqual(['gr-a', 'gr-b', 'gr-c']);
    expect((await rejection(groups.removeMembers('gr-b', chatId, ['gr-c'], 3))).code).toBe(
      'NOT_MEMBER',
    );
    await groups.addMembers('gr-a', chatId, ['gr-b'], { admin: true }, 3);
    expect(pushed.at(-1)?.event).toMatchObject({
      change: 'membersAdded',
      members: ['gr-b'],
      admin: true,
    });
    expect((await store.sync('gr-b', 0, 100)).events.at(-1)).toMatchObject({ admin: true });
    await groups.removeMembers('gr-b', chatId, ['gr-c'], 4);
    expect(
      (await rejection(groups.addMembers('gr-a', chatId, ['x1', 'x2', 'x3', 'x4'], {}, 5))).code,
    ).toBe('LIMIT');
    // The last admins leave: the longest-standing member left becomes one.
    await groups.addMembers('gr-a', chatId, ['gr-d'], {}, 6);
    await groups.removeMembers('gr-a', chatId, ['gr-a'], 7);
    await groups.removeMembers('gr-b', chatId, ['gr-b'], 8);
    const page = await groups.listChats('gr-d', { limit: 10 });
    expect(page.chats[0]).toMatchObject({ chatId, members: ['gr-d'], admins: ['gr-d'] });
  });

  it('pages chats by latest activity', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await store.createChat('pg-a', [`pg-${i}`], null, 100 + i)).chatId);
    await store.send(sendInput('pg-a', ids[0]!, { now: 1000 }));
    const first = await groups.listChats('pg-a', { limit: 2 });
    expect(first.chats.map((c) => c.chatId)).toEqual([ids[0], ids[4]]);
    expect(first.chats[0]).toMatchObject({ lastMessageAt: 1000, activeAt: 1000 });
    expect(first.chats[1]).toMatchObject({ lastMessageAt: null, activeAt: 104 });
    expect(first.more).toBe(true);
    const second = await groups.listChats('pg-a', { limit: 2, before: 104 });
    const third = await groups.listChats('pg-a', { limit: 2, before: 102 });
    expect([...second.chats, ...third.chats].map((c) => c.chatId)).toEqual([
      ids[3],
      ids[2],
      ids[1],
    ]);
    expect(third.more).toBe(false);
  });
});
