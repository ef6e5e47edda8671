import { sql } from 'kysely';
import { ChatError } from '@chat/protocol';
import { PgGroupStore, createDatabase, migrate } from '../src/index';
import type { PgChatStore } from '../src/index';
import { countRows, expectContiguousSeqs, sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let groups: PgGroupStore;

beforeAll(async () => {
  fx = await storeFixture('store');
  store = fx.store();
  groups = new PgGroupStore(fx.db, { maxMembersPerChat: 100 });
});
afterAll(() => fx.close());

function users(n: number, prefix: string): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatError);
    return err as ChatError;
  }
  throw new Error('expected a rejection');
}

describe('migrations', () => {
  it('are idempotent, also when several processes run them at once', async () => {
    const dbs = [1, 2, 3].map(() => createDatabase(fx.testDb.url, { maxConnections: 1 }));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db)));
      for (const r of results) expect(r.error).toBeUndefined();
      expect(results.flatMap((r) => r.results ?? [])).toEqual([]); // already applied in the fixture
      const again = await migrate(fx.db);
      expect(again.results).toEqual([]);
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
    }
  });

  it('apply from scratch concurrently', async () => {
    const { createTestDatabase } = await import('../../testkit/src/db');
    const fresh = await createTestDatabase('migrate');
    const dbs = [1, 2, 3].map(() => createDatabase(fresh.url, { maxConnections: 1 }));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db)));
      const applied = results.flatMap((r) => (r.results ?? []).map((m) => m.migrationName));
      expect(applied).toEqual([
        '0001_initial',
        '0002_presence_receipts_admin',
        '0003_media',
        '0004_retention',
        '0005_message_content_removed',
        '0006_send_batch_function',
      ]);
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
      await fresh.drop();
    }
  });
});

describe('devices', () => {
  it('creates users and devices implicitly and reports cursors', async () => {
    const first = await store.connectDevice('dev-a', 'phone', 1000);
    expect(first).toEqual({ latestSeq: 0, ackedSeq: 0, created: true });
    const again = await store.connectDevice('dev-a', 'phone', 2000);
    expect(again).toEqual({ latestSeq: 0, ackedSeq: 0, created: false });
    const row = await fx.db
      .selectFrom('devices')
      .selectAll()
      .where('user_id', '=', 'dev-a')
      .executeTakeFirstOrThrow();
    expect(Number(row.last_active)).toBe(2000);
    expect(await store.latestSeq('dev-a')).toBe(0);
    expect(await store.latestSeq('nobody')).toBe(0);
  });
});

describe('send, sync, ack', () => {
  it('round-trips with contiguous seqs per user', async () => {
    const created = await store.createChat(
      'rt-alice',
      ['rt-bob', 'rt-bob', 'rt-alice'],
      'pals',
      10,
    );
    const { chatId } = created;
    expect(created.deliveries.map((d) => [d.userId, d.event])).toEqual([
      [
        'rt-alice',
        {
          seq: 1,
          kind: 'chat',
          chatId,
          change: 'created',
          members: ['rt-alice', 'rt-bob'],
          by: 'rt-alice',
          ts: 10,
        },
      ],
      [
        'rt-bob',
        {
          seq: 1,
          kind: 'chat',
          chatId,
          change: 'created',
          members: ['rt-alice', 'rt-bob'],
          by: 'rt-alice',
          ts: 10,
        },
      ],
    ]);
    expect(await groups.listChats('rt-bob', { limit: 10 })).toEqual({
      chats: [
        {
          chatId,
          name: 'pals',
          members: ['rt-alice', 'rt-bob'],
          admins: ['rt-alice'],
          lastMessageAt: null,
          activeAt: 10,
        },
      ],
      more: false,
    });

    const attachments = [{ key: 'media/k1', mime: 'image/png', size: 123 }];
    const r1 = await store.send(
      sendInput('rt-alice', chatId, { clientMsgId: 'm1', body: 'hi', attachments, now: 20 }),
    );
    const r2 = await store.send(
      sendInput('rt-bob', chatId, { clientMsgId: 'm1', body: null, now: 30 }),
    );
    expect(r1).toMatchObject({ ts: 20, dup: false });
    expect(r1.messageId).toMatch(/^[0-9]+$/);
    expect(r2.messageId).not.toBe(r1.messageId);
    const msg1 = {
      kind: 'message',
      chatId,
      messageId: r1.messageId,
      from: 'rt-alice',
      body: 'hi',
      attachments,
      ts: 20,
    };
    const byUser = [...r1.deliveries].sort((a, b) => a.userId.localeCompare(b.userId));
    expect(byUser).toEqual([
      { userId: 'rt-alice', event: { seq: 2, ...msg1 } },
      { userId: 'rt-bob', event: { seq: 2, ...msg1 } },
    ]);

    const page = await store.sync('rt-bob', 0, 10);
    expect(page.latestSeq).toBe(3);
    expect(page.more).toBe(false);
    expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(page.events[1]).toEqual({ seq: 2, ...msg1 });
    expect(page.events[2]).toEqual({
      seq: 3,
      kind: 'message',
      chatId,
      messageId: r2.messageId,
      from: 'rt-bob',
      body: null,
      attachments: [],
      ts: 30,
    });
    // Sync pages.
    const first = await store.sync('rt-bob', 0, 2);
    expect(first.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(first.more).toBe(true);
    const rest = await store.sync('rt-bob', 2, 2);
    expect(rest.events.map((e) => e.seq)).toEqual([3]);
    expect(rest.more).toBe(false);

    // ack: never backwards, never past the latest.
    await store.connectDevice('rt-bob', 'd1', 40);
    await store.ack('rt-bob', 'd1', 99);
    expect(await store.connectDevice('rt-bob', 'd1', 41)).toMatchObject({
      ackedSeq: 3,
      latestSeq: 3,
    });
    await store.ack('rt-bob', 'd1', 1);
    expect(await store.connectDevice('rt-bob', 'd1', 42)).toMatchObject({ ackedSeq: 3 });
    expect((await store.sync('rt-bob', 0, 10)).events).toEqual([]); // the only device acked all
    await expectContiguousSeqs(fx.db);
  });

  it('deletes only the events every device of the user has acked', async () => {
    const { chatId } = await store.createChat('ack-a', ['ack-b'], null, 1);
    await store.connectDevice('ack-b', 'phone', 1);
    await store.connectDevice('ack-b', 'laptop', 1);
    for (let i = 0; i < 4; i++) await store.send(sendInput('ack-a', chatId));
    const seqsOf = async (): Promise<number[]> =>
      (
        await fx.db
          .selectFrom('inbox')
          .select('seq')
          .where('user_id', '=', 'ack-b')
          .orderBy('seq')
          .execute()
      ).map((r) => Number(r.seq));
    expect(await seqsOf()).toEqual([1, 2, 3, 4, 5]);
    await store.ack('ack-b', 'phone', 4);
    expect(await seqsOf()).toEqual([1, 2, 3, 4, 5]); // the laptop acked nothing yet
    await store.ack('ack-b', 'laptop', 2);
    expect(await seqsOf()).toEqual([3, 4, 5]);
    await store.ack('ack-b', 'laptop', 5);
    expect(await seqsOf()).toEqual([5]);
    await store.ack('ack-b', 'phone', 5);
    expect(await seqsOf()).toEqual([]);
    // A device that joins later starts with nothing acked and blocks nothing already gone.
    expect(await store.connectDevice('ack-b', 'tablet', 2)).toEqual({
      latestSeq: 5,
      ackedSeq: 0,
      created: true,
    });
    expect(await store.latestSeq('ack-b')).toBe(5);
  });
});

describe('ackMany', () => {
  it('moves many cursors in one call and deletes what every device of each user acked', async () => {
    const { chatId } = await store.createChat('many-a', ['many-b', 'many-c'], null, 1);
    await store.connectDevice('many-b', 'phone', 1);
    await store.connectDevice('many-b', 'laptop', 1);
    await store.connectDevice('many-c', 'phone', 1);
    for (let i = 0; i < 3; i++) await store.send(sendInput('many-a', chatId));
    const seqs = async (user: string): Promise<number[]> =>
      (
        await fx.db
          .selectFrom('inbox')
          .select('seq')
          .where('user_id', '=', user)
          .orderBy('seq')
          .execute()
      ).map((r) => Number(r.seq));
    await store.ackMany([
      { userId: 'many-b', deviceId: 'phone', seq: 4 },
      { userId: 'many-b', deviceId: 'laptop', seq: 2 },
      { userId: 'many-c', deviceId: 'phone', seq: 3 },
      // A stale duplicate of a cursor in the same call must not move it backwards.
      { userId: 'many-c', deviceId: 'phone', seq: 1 },
      // Past the latest seq is clamped; an unknown device is ignored.
      { userId: 'many-b', deviceId: 'ghost', seq: 99 },
    ]);
    expect(await seqs('many-b')).toEqual([3, 4]);
    expect(await seqs('many-c')).toEqual([4]);
    await store.ackMany([{ userId: 'many-b', deviceId: 'laptop', seq: 1_000 }]);
    expect(await seqs('many-b')).toEqual([]);
    const cursor = await fx.db
      .selectFrom('devices')
      .select('acked_seq')
      .where('user_id', '=', 'many-b')
      .where('device_id', '=', 'laptop')
      .executeTakeFirstOrThrow();
    expect(Number(cursor.acked_seq)).toBe(4);
    await store.ackMany([]);
  });
});

describe('rules', () => {
  it('rejects unknown chats and non-members without writing anything', async () => {
    const { chatId } = await store.createChat('rule-a', ['rule-b'], null, 1);
    await store.connectDevice('rule-x', 'd', 1);
    const before = {
      messages: await countRows(fx.db, 'messages'),
      inbox: await countRows(fx.db, 'inbox'),
      seqs: await fx.db.selectFrom('users').select(['id', 'next_seq']).orderBy('id').execute(),
    };
    const [notFound, notMember, ok] = await Promise.allSettled([
      store.send(sendInput('rule-a', 'no-such-chat')),
      store.send(sendInput('rule-x', chatId)),
      store.send(sendInput('rule-a', chatId)),
    ]);
    expect(notFound).toMatchObject({ status: 'rejected', reason: { code: 'NOT_FOUND' } });
    expect(notMember).toMatchObject({ status: 'rejected', reason: { code: 'NOT_MEMBER' } });
    expect(ok).toMatchObject({ status: 'fulfilled' });
    expect(await countRows(fx.db, 'messages')).toBe(before.messages + 1);
    expect(await countRows(fx.db, 'inbox')).toBe(before.inbox + 2);
    const seqs = await fx.db.selectFrom('users').select(['id', 'next_seq']).orderBy('id').execute();
    const bumped = seqs.filter(
      (u) => before.seqs.find((b) => b.id === u.id)?.next_seq !== u.next_seq,
    );
    expect(bumped.map((u) => u.id).sort()).toEqual(['rule-a', 'rule-b']);

    expect((await rejection(groups.addMembers('rule-x', chatId, ['rule-y'], {}, 2))).code).toBe(
      'NOT_MEMBER',
    );
    expect((await rejection(groups.removeMembers('rule-a', 'nope', ['rule-b'], 2))).code).toBe(
      'NOT_FOUND',
    );
    expect(await countRows(fx.db, 'inbox')).toBe(before.inbox + 2);
  });

  it('enforces the member cap at creation and when adding', async () => {
    const chatsBefore = await countRows(fx.db, 'chats');
    const many = users(100, 'cap');
    expect((await rejection(store.createChat('cap-owner', many, null, 1))).code).toBe('LIMIT');
    expect(await countRows(fx.db, 'chats')).toBe(chatsBefore);

    const { chatId, deliveries } = await store.createChat('cap-owner', many.slice(0, 99), null, 1);
    expect(deliveries).toHaveLength(100);
    const inboxBefore = await countRows(fx.db, 'inbox');
    expect((await rejection(groups.addMembers('cap-owner', chatId, ['cap99'], {}, 2))).code).toBe(
      'LIMIT',
    );
    expect(await countRows(fx.db, 'inbox')).toBe(inboxBefore);
    // Adding someone who is already a member is not growth.
    expect((await groups.addMembers('cap-owner', chatId, ['cap0'], {}, 2)).deliveries).toEqual([]);
  });

  it('adds and removes members, telling everyone involved', async () => {
    const { chatId } = await store.createChat('mem-a', ['mem-b'], 'g', 1);
    // mem-a created the chat, so is its admin; mem-b is already a member and is not added again.
    const added = await groups.addMembers('mem-a', chatId, ['mem-c', 'mem-b'], {}, 2);
    expect(added.deliveries.map((d) => d.userId).sort()).toEqual(['mem-a', 'mem-b', 'mem-c']);
    expect(added.deliveries[0]?.event).toMatchObject({
      kind: 'chat',
      change: 'membersAdded',
      members: ['mem-c'],
      by: 'mem-a',
    });
    const removed = await groups.removeMembers('mem-a', chatId, ['mem-b', 'mem-zz'], 3);
    expect(removed.deliveries.map((d) => d.userId).sort()).toEqual(['mem-a', 'mem-b', 'mem-c']);
    expect(removed.deliveries[0]?.event).toMatchObject({
      change: 'membersRemoved',
      members: ['mem-b'],
      by: 'mem-a',
    });
    expect((await rejection(store.send(sendInput('mem-b', chatId)))).code).toBe('NOT_MEMBER');
    // Leaving.
    const left = await groups.removeMembers('mem-c', chatId, ['mem-c'], 4);
    expect(left.deliveries.map((d) => d.userId).sort()).toEqual(['mem-a', 'mem-c']);
    expect(await groups.listChats('mem-c', { limit: 10 })).toEqual({ chats: [], more: false });
    expect(await groups.listChats('mem-a', { limit: 10 })).toEqual({
      chats: [
        {
          chatId,
          name: 'g',
          members: ['mem-a'],
          admins: ['mem-a'],
          lastMessageAt: null,
          activeAt: 1,
        },
      ],
      more: false,
    });
    const synced = await store.sync('mem-c', 0, 10);
    expect(synced.events.map((e) => (e.kind === 'chat' ? e.change : e.kind))).toEqual([
      'membersAdded',
      'membersRemoved',
      'membersRemoved',
    ]);
  });
});

describe('idempotency', () => {
  it('stores a retried clientMsgId once, also when the copies race', async () => {
    const { chatId } = await store.createChat('idem-a', ['idem-b', 'idem-c'], null, 1);
    const first = await store.send(sendInput('idem-a', chatId, { clientMsgId: 'x1', now: 5 }));
    const retry = await store.send(sendInput('idem-a', chatId, { clientMsgId: 'x1', now: 6 }));
    expect(retry).toEqual({ messageId: first.messageId, ts: 5, dup: true, deliveries: [] });
    // Retries in one batch, the first copy of a key refused (not a member of that chat).
    const { chatId: elsewhere } = await store.createChat('idem-b', [], null, 1);
    const mixed = await Promise.allSettled([
      store.send(sendInput('idem-a', elsewhere, { clientMsgId: 'x3' })),
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x1', now: 7 })),
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x3', now: 8 })),
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x1', now: 9 })),
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x3', now: 10 })),
    ]);
    expect(mixed[0]).toMatchObject({ status: 'rejected', reason: { code: 'NOT_MEMBER' } });
    const [, dup1, fresh, dup2, dup3] = mixed.map((r) => (r.status === 'fulfilled' ? r.value : r));
    const dupOfFirst = { messageId: first.messageId, ts: 5, dup: true, deliveries: [] };
    expect(dup1).toEqual(dupOfFirst);
    expect(dup2).toEqual(dupOfFirst);
    expect(fresh).toMatchObject({ ts: 8, dup: false, deliveries: expect.any(Array) });
    const freshId = (fresh as { messageId: string }).messageId;
    expect(dup3).toEqual({ messageId: freshId, ts: 8, dup: true, deliveries: [] });

    // Same batch, and racing stores (two pools) with the same key.
    const other = fx.store();
    const racing = await Promise.all([
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
      other.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
      other.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
    ]);
    expect(new Set(racing.map((r) => r.messageId)).size).toBe(1);
    expect(racing.filter((r) => !r.dup)).toHaveLength(1);
    expect(racing.filter((r) => r.dup).every((r) => r.deliveries.length === 0)).toBe(true);
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from inbox where message_id = ${racing[0]!.messageId}`.execute(fx.db);
    expect(Number(rows[0]?.n)).toBe(3);
    const msgs = await fx.db
      .selectFrom('messages')
      .select('id')
      .where('sender_id', '=', 'idem-a')
      .execute();
    expect(msgs).toHaveLength(3);
    await expectContiguousSeqs(fx.db);
  });

  it('fails only the bad send of a batch', async () => {
    const { chatId } = await store.createChat('bad-a', [], null, 1);
    const results = await Promise.allSettled([
      store.send(sendInput('bad-a', chatId, { body: 'ok 1' })),
      store.send(sendInput('bad-a', chatId, { body: 'nul \u0000 byte' })),
      store.send(sendInput('bad-a', chatId, { body: 'ok 2' })),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results[1]).toMatchObject({ reason: { code: 'INTERNAL' } });
    await expectContiguousSeqs(fx.db);
  });
});
