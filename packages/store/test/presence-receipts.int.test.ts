/**
 * Issue 7 in the store: last seen never moves backwards (also with two pools racing, like two
 * nodes), receipts are recorded once each, and group administration rules.
 */
import { ChatError } from '@chat/protocol';
import type { ReceiptEvent } from '@chat/protocol';
import { PgGroupStore, PgPresenceStore, PgReceiptStore, createDatabase } from '../src/index';
import type { Delivery, PgChatStore } from '../src/index';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let groups: PgGroupStore;
let receipts: PgReceiptStore;

beforeAll(async () => {
  fx = await storeFixture('presence');
  store = fx.store();
  groups = new PgGroupStore(fx.db, { maxMembersPerChat: 5 });
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

function receiptsOf(deliveries: readonly Delivery[]): Array<[string, string, string, string]> {
  return deliveries
    .filter((d) => d.event.kind === 'receipt')
    .map((d) => {
      const e = d.event as Omit<ReceiptEvent, 't'>;
      return [d.userId, e.messageId, e.user, e.status];
    });
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
      // 200 writes from two pools in a scrambled order: the highest time wins.
      const times = Array.from({ length: 200 }, (_, i) => 2000 + ((i * 7919) % 200));
      await Promise.all(times.map((t, i) => (i % 2 === 0 ? presence : other).touch(['ls-a'], t)));
      expect((await presence.lastSeenFor('ls-a', 'ls-a')).lastSeen).toBe(2199);
    } finally {
      await otherDb.destroy();
    }
  });

  it('is visible only to users who share a chat', async () => {
    const presence = new PgPresenceStore(fx.db);
    await store.createChat('ls-b', ['ls-c'], null, 1);
    await presence.touch(['ls-c'], 42);
    expect(await presence.lastSeenFor('ls-b', 'ls-c')).toEqual({ shared: true, lastSeen: 42 });
    expect(await presence.lastSeenFor('ls-stranger', 'ls-c')).toEqual({
      shared: false,
      lastSeen: 42,
    });
  });
});

describe('receipts', () => {
  it('records delivered on the first ack of any device, and read once, with no duplicates', async () => {
    const { chatId } = await store.createChat('rc-a', ['rc-b'], null, 1);
    await store.connectDevice('rc-b', 'd1', 1);
    await store.connectDevice('rc-b', 'd2', 1);
    const m1 = await store.send(sendInput('rc-a', chatId));
    const m2 = await store.send(sendInput('rc-a', chatId));
    const seqB = m2.deliveries.find((d) => d.userId === 'rc-b')!.event.seq;

    const first = await receipts.recordDelivered(
      [{ userId: 'rc-b', deviceId: 'd1', seq: seqB }],
      5,
    );
    expect(receiptsOf(first)).toEqual([
      ['rc-a', m1.messageId, 'rc-b', 'delivered'],
      ['rc-a', m2.messageId, 'rc-b', 'delivered'],
    ]);
    // The same acks again (a retried flush), then the second device: nothing new.
    expect(
      await receipts.recordDelivered([{ userId: 'rc-b', deviceId: 'd1', seq: seqB }], 6),
    ).toEqual([]);
    await store.ackMany([{ userId: 'rc-b', deviceId: 'd1', seq: seqB }]);
    expect(
      await receipts.recordDelivered([{ userId: 'rc-b', deviceId: 'd2', seq: seqB }], 7),
    ).toEqual([]);

    const read = await receipts.markRead([{ userId: 'rc-b', chatId, messageId: m2.messageId }], 8);
    expect(read.outcomes).toEqual([undefined]);
    expect(receiptsOf(read.deliveries)).toEqual([
      ['rc-a', m1.messageId, 'rc-b', 'read'],
      ['rc-a', m2.messageId, 'rc-b', 'read'],
    ]);
    const again = await receipts.markRead([{ userId: 'rc-b', chatId, messageId: m1.messageId }], 9);
    expect(again.deliveries).toEqual([]);

    // A read before any ack sends delivered too; the later ack adds nothing.
    const m3 = await store.send(sendInput('rc-a', chatId));
    const r3 = await receipts.markRead([{ userId: 'rc-b', chatId, messageId: m3.messageId }], 10);
    expect(receiptsOf(r3.deliveries)).toEqual([
      ['rc-a', m3.messageId, 'rc-b', 'delivered'],
      ['rc-a', m3.messageId, 'rc-b', 'read'],
    ]);
    const seq3 = m3.deliveries.find((d) => d.userId === 'rc-b')!.event.seq;
    expect(
      await receipts.recordDelivered([{ userId: 'rc-b', deviceId: 'd1', seq: seq3 }], 11),
    ).toEqual([]);
    // The sender's inbox holds them durably.
    const synced = await store.sync('rc-a', 0, 100);
    expect(synced.events.filter((e) => e.kind === 'receipt')).toHaveLength(6);
  });

  it('answers NOT_FOUND and NOT_MEMBER per read', async () => {
    const { chatId } = await store.createChat('rr-a', ['rr-b'], null, 1);
    const m = await store.send(sendInput('rr-a', chatId));
    const result = await receipts.markRead(
      [
        { userId: 'rr-b', chatId: 'nope', messageId: m.messageId },
        { userId: 'rr-x', chatId, messageId: m.messageId },
        { userId: 'rr-b', chatId, messageId: 'abc' },
        { userId: 'rr-b', chatId, messageId: m.messageId },
      ],
      5,
    );
    expect(result.outcomes.map((o) => o?.code)).toEqual([
      'NOT_FOUND',
      'NOT_MEMBER',
      'NOT_FOUND',
      undefined,
    ]);
    expect(receiptsOf(result.deliveries)).toHaveLength(2);
  });
});

describe('groups', () => {
  it('lets admins add, remove and promote, anyone leave, and keeps the cap', async () => {
    const { chatId } = await store.createChat('gr-a', ['gr-b'], 'g', 1);
    expect((await rejection(groups.addMembers('gr-b', chatId, ['gr-c'], {}, 2))).code).toBe(
      'NOT_MEMBER',
    );
    const added = await groups.addMembers('gr-a', chatId, ['gr-c'], {}, 2);
    expect(added.deliveries.map((d) => d.userId).sort()).toEqual(['gr-a', 'gr-b', 'gr-c']);
    expect((await rejection(groups.removeMembers('gr-b', chatId, ['gr-c'], 3))).code).toBe(
      'NOT_MEMBER',
    );
    const promoted = await groups.addMembers('gr-a', chatId, ['gr-b'], { admin: true }, 3);
    expect(promoted.deliveries[0]?.event).toMatchObject({
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
