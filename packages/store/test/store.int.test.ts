import { sql } from 'kysely';
import { ChatError } from '@chat/protocol';
import { Client } from 'pg';
import { PgGroupStore, createDatabase, migrate } from '../src/index';
import { MIGRATE_LOCK_ID } from '../src/migrations';
import type { PgChatStore } from '../src/index';
import {
  countRows,
  expectContiguousSeqs,
  ON_CITUS,
  inboxOf,
  sendInput,
  settle,
  storeFixture,
} from './helpers';
import type { Delivery } from '../src/index';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let groups: PgGroupStore;
/** Every event the store handed to its listeners. */
const pushed: Delivery[] = [];

beforeAll(async () => {
  fx = await storeFixture('store');
  store = await fx.store();
  store.onDeliveries((deliveries) => pushed.push(...deliveries));
  groups = new PgGroupStore(fx.db, { maxMembersPerChat: 100 }, store);
});
afterAll(() => fx.close());

/** The events pushed for `messageId`, by user. */
function pushedFor(messageId: string): [string, number][] {
  return pushed
    .filter((d) => d.event.kind === 'message' && d.event.messageId === messageId)
    .map((d): [string, number] => [d.userId, d.event.seq])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

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

  it("wait for another process's migrations longer than one query may last", async () => {
    const holder = new Client({ connectionString: fx.testDb.url });
    await holder.connect();
    await holder.query('select pg_advisory_lock($1)', [MIGRATE_LOCK_ID]);
    const db = createDatabase(fx.testDb.url, { maxConnections: 1, queryTimeoutMillis: 300 });
    try {
      const started = Date.now();
      const migrating = migrate(db);
      // The other process migrates for three query timeouts: a wait in one statement would
      // have been cut by the timeout.
      const released = new Promise<void>((resolve) =>
        setTimeout(() => {
          void holder
            .query('select pg_advisory_unlock($1)', [MIGRATE_LOCK_ID])
            .then(() => resolve());
        }, 900),
      );
      expect((await migrating).error).toBeUndefined();
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      await released;
    } finally {
      await db.destroy();
      await holder.end();
    }
  });

  it('apply from scratch concurrently', async () => {
    const { createTestDatabase, createCitusTestDatabase } = await import('@chat/testkit');
    const fresh = ON_CITUS
      ? await createCitusTestDatabase('migrate')
      : await createTestDatabase('migrate');
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
        '0007_durable_path',
        '0008_distribute',
        '0009_store_epoch',
        '0010_citus_local_steps',
        '0011_blocks',
        '0012_attachment_fetches',
        '0014_push',
        '0015_expired_seq',
        '0016_citus_coordinator_locks',
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
    expect(first).toEqual({ latestSeq: 0, ackedSeq: 0, created: true, receipts: [] });
    const again = await store.connectDevice('dev-a', 'phone', 2000);
    expect(again).toEqual({ latestSeq: 0, ackedSeq: 0, created: false, receipts: [] });
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
    // The change is answered once its events are in the inboxes.
    const chatEvent = {
      seq: 1,
      kind: 'chat',
      chatId,
      change: 'created',
      members: ['rt-alice', 'rt-bob'],
      by: 'rt-alice',
      ts: 10,
    };
    expect(pushed.filter((d) => d.event.chatId === chatId).map((d) => [d.userId, d.event])).toEqual(
      [
        ['rt-alice', chatEvent],
        ['rt-bob', chatEvent],
      ],
    );
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
    await store.connectDevice('rt-alice', 'phone', 15);
    const r1 = await store.send(
      sendInput('rt-alice', chatId, {
        clientMsgId: 'm1',
        body: 'hi',
        attachments,
        now: 20,
        deviceId: 'phone',
      }),
    );
    const r2 = await store.send(
      sendInput('rt-bob', chatId, { clientMsgId: 'm1', body: null, now: 30 }),
    );
    expect(r1).toEqual({ messageId: expect.stringMatching(/^[0-9]+$/), ts: 20, dup: false });
    expect(r2.messageId).not.toBe(r1.messageId);
    // Ids are ordered within the chat, and never below created_at * 1000.
    expect(BigInt(r2.messageId) > BigInt(r1.messageId)).toBe(true);
    expect(BigInt(r1.messageId) >= 20_000n).toBe(true);
    await settle(store);
    const msg1 = {
      kind: 'message',
      chatId,
      messageId: r1.messageId,
      from: 'rt-alice',
      body: 'hi',
      attachments,
      ts: 20,
    };
    // alice sent from her only device: her inbox gets no copy; bob's does.
    expect(pushedFor(r1.messageId)).toEqual([['rt-bob', 2]]);
    // bob has no device at all: a sender copy needs another device, so none either.
    expect(pushedFor(r2.messageId)).toEqual([['rt-alice', 2]]);

    const page = await store.sync('rt-bob', 0, 10);
    expect(page.latestSeq).toBe(2);
    expect(page.more).toBe(false);
    expect(page.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(page.events[1]).toEqual({ seq: 2, ...msg1 });
    expect((await store.sync('rt-alice', 1, 10)).events).toEqual([
      {
        seq: 2,
        kind: 'message',
        chatId,
        messageId: r2.messageId,
        from: 'rt-bob',
        body: null,
        attachments: [],
        ts: 30,
      },
    ]);
    // Sync pages.
    const first = await store.sync('rt-bob', 0, 1);
    expect(first.events.map((e) => e.seq)).toEqual([1]);
    expect(first.more).toBe(true);
    const rest = await store.sync('rt-bob', 1, 1);
    expect(rest.events.map((e) => e.seq)).toEqual([2]);
    expect(rest.more).toBe(false);

    // Cursors never move backwards.
    await store.connectDevice('rt-bob', 'd1', 40);
    await store.ack('rt-bob', 'd1', 2);
    expect(await store.connectDevice('rt-bob', 'd1', 41)).toMatchObject({
      ackedSeq: 2,
      latestSeq: 2,
    });
    await store.ack('rt-bob', 'd1', 1);
    expect(await store.connectDevice('rt-bob', 'd1', 42)).toMatchObject({ ackedSeq: 2 });
    expect((await store.sync('rt-bob', 0, 10)).events).toEqual([]); // the only device acked all
    await expectContiguousSeqs(fx.db);
  });

  it('copies a message into the sender’s inbox only for their other devices', async () => {
    const { chatId } = await store.createChat('copy-a', ['copy-b'], null, 1);
    await store.connectDevice('copy-a', 'phone', 1);
    const alone = await store.send(sendInput('copy-a', chatId, { deviceId: 'phone' }));
    // (Decided when the events are appended: let the first one be, before the laptop appears.)
    await store.fanoutIdle();
    await store.connectDevice('copy-a', 'laptop', 2);
    const two = await store.send(sendInput('copy-a', chatId, { deviceId: 'phone' }));
    await store.fanoutIdle();
    expect(pushedFor(alone.messageId)).toEqual([['copy-b', 2]]);
    expect(pushedFor(two.messageId)).toEqual([
      ['copy-a', 2],
      ['copy-b', 3],
    ]);
  });

  it('deletes only the events every device of the user has acked', async () => {
    const { chatId } = await store.createChat('ack-a', ['ack-b'], null, 1);
    await store.connectDevice('ack-b', 'phone', 1);
    await store.connectDevice('ack-b', 'laptop', 1);
    for (let i = 0; i < 4; i++) await store.send(sendInput('ack-a', chatId));
    await settle(store);
    const seqsOf = async (): Promise<number[]> => (await inboxOf(fx.db, 'ack-b')).map((e) => e.seq);
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
      receipts: [],
    });
    expect(await store.latestSeq('ack-b')).toBe(5);
    // The inbox is empty, yet the next event continues the seqs (from the cursors).
    await store.send(sendInput('ack-a', chatId));
    await store.fanoutIdle();
    expect(await seqsOf()).toEqual([6]);
  });

  it('keeps acked events newer than the lowest fan-out mark of any node', async () => {
    const { chatId } = await store.createChat('mark-a', ['mark-b'], null, 1);
    await store.connectDevice('mark-b', 'phone', 1);
    // Another node whose mark stays behind (it owes a fan-out from long ago).
    await sql`insert into fanout_marks (node_id, upto, heartbeat_at) values ('behind', 1, ${Date.now()})`.execute(
      fx.db,
    );
    try {
      await store.send(sendInput('mark-a', chatId));
      await settle(store);
      await store.ack('mark-b', 'phone', 2);
      expect((await inboxOf(fx.db, 'mark-b')).map((e) => e.seq)).toEqual([1, 2]);
    } finally {
      await sql`delete from fanout_marks where node_id = 'behind'`.execute(fx.db);
    }
    await store.writeMark();
    await store.ack('mark-b', 'phone', 2);
    expect(await inboxOf(fx.db, 'mark-b')).toEqual([]);
  });
});

describe('writeCursors', () => {
  it('moves many cursors in one call and deletes what every device of each user acked', async () => {
    const { chatId } = await store.createChat('many-a', ['many-b', 'many-c'], null, 1);
    await store.connectDevice('many-b', 'phone', 1);
    await store.connectDevice('many-b', 'laptop', 1);
    await store.connectDevice('many-c', 'phone', 1);
    for (let i = 0; i < 3; i++) await store.send(sendInput('many-a', chatId));
    await settle(store);
    const seqs = async (user: string): Promise<number[]> =>
      (await inboxOf(fx.db, user)).map((e) => e.seq);
    await store.writeCursors(
      [
        { userId: 'many-b', deviceId: 'phone', seq: 4 },
        { userId: 'many-b', deviceId: 'laptop', seq: 2 },
        { userId: 'many-c', deviceId: 'phone', seq: 3 },
        // A stale duplicate of a cursor in the same call must not move it backwards.
        { userId: 'many-c', deviceId: 'phone', seq: 1 },
        // An unknown device is ignored.
        { userId: 'many-b', deviceId: 'ghost', seq: 99 },
      ],
      50,
    );
    expect(await seqs('many-b')).toEqual([3, 4]);
    expect(await seqs('many-c')).toEqual([4]);
    await store.writeCursors([{ userId: 'many-b', deviceId: 'laptop', seq: 4 }], 60);
    expect(await seqs('many-b')).toEqual([]);
    const cursor = await fx.db
      .selectFrom('devices')
      .select(['acked_seq', 'last_active'])
      .where('user_id', '=', 'many-b')
      .where('device_id', '=', 'laptop')
      .executeTakeFirstOrThrow();
    expect(Number(cursor.acked_seq)).toBe(4);
    expect(Number(cursor.last_active)).toBe(60);
    await store.writeCursors([], 70);
  });
});

describe('rules', () => {
  it('rejects unknown chats and non-members without writing anything', async () => {
    const { chatId } = await store.createChat('rule-a', ['rule-b'], null, 1);
    await store.connectDevice('rule-x', 'd', 1);
    await settle(store);
    const before = {
      messages: await countRows(fx.db, 'messages'),
      inbox: await countRows(fx.db, 'inbox'),
    };
    const [notFound, notMember, ok] = await Promise.allSettled([
      store.send(sendInput('rule-a', 'no-such-chat')),
      store.send(sendInput('rule-x', chatId)),
      store.send(sendInput('rule-a', chatId)),
    ]);
    expect(notFound).toMatchObject({ status: 'rejected', reason: { code: 'NOT_FOUND' } });
    expect(notMember).toMatchObject({ status: 'rejected', reason: { code: 'NOT_MEMBER' } });
    expect(ok).toMatchObject({ status: 'fulfilled' });
    await store.fanoutIdle();
    expect(await countRows(fx.db, 'messages')).toBe(before.messages + 1);
    expect(await countRows(fx.db, 'inbox')).toBe(before.inbox + 1); // rule-b's
    expect(await inboxOf(fx.db, 'rule-x')).toEqual([]);

    expect((await rejection(groups.addMembers('rule-x', chatId, ['rule-y'], {}, 2))).code).toBe(
      'NOT_MEMBER',
    );
    expect((await rejection(groups.removeMembers('rule-a', 'nope', ['rule-b'], 2))).code).toBe(
      'NOT_FOUND',
    );
    expect(await countRows(fx.db, 'inbox')).toBe(before.inbox + 1);
  });

  it('enforces the member cap at creation and when adding', async () => {
    const chatsBefore = await countRows(fx.db, 'chats');
    const many = users(100, 'cap');
    expect((await rejection(store.createChat('cap-owner', many, null, 1))).code).toBe('LIMIT');
    expect(await countRows(fx.db, 'chats')).toBe(chatsBefore);

    const { chatId } = await store.createChat('cap-owner', many.slice(0, 99), null, 1);
    expect(pushed.filter((d) => d.event.chatId === chatId)).toHaveLength(100);
    const inboxBefore = await countRows(fx.db, 'inbox');
    expect((await rejection(groups.addMembers('cap-owner', chatId, ['cap99'], {}, 2))).code).toBe(
      'LIMIT',
    );
    // Adding someone who is already a member is not growth, and changes nothing.
    await groups.addMembers('cap-owner', chatId, ['cap0'], {}, 2);
    expect(await countRows(fx.db, 'inbox')).toBe(inboxBefore);
  });

  it('adds and removes members, telling everyone involved', async () => {
    const { chatId } = await store.createChat('mem-a', ['mem-b'], 'g', 1);
    const changes = (): [string, string][] =>
      pushed
        .filter((d) => d.event.chatId === chatId && d.event.kind === 'chat')
        .map((d): [string, string] => [
          d.userId,
          d.event.kind === 'chat' ? `${d.event.change}:${d.event.members.join(',')}` : '',
        ])
        .sort();
    // mem-a created the chat, so is its admin; mem-b is already a member and is not added again.
    await groups.addMembers('mem-a', chatId, ['mem-c', 'mem-b'], {}, 2);
    await groups.removeMembers('mem-a', chatId, ['mem-b', 'mem-zz'], 3);
    expect((await rejection(store.send(sendInput('mem-b', chatId)))).code).toBe('NOT_MEMBER');
    // Leaving.
    await groups.removeMembers('mem-c', chatId, ['mem-c'], 4);
    expect(changes()).toEqual([
      ['mem-a', 'created:mem-a,mem-b'],
      ['mem-a', 'membersAdded:mem-c'],
      ['mem-a', 'membersRemoved:mem-b'],
      ['mem-a', 'membersRemoved:mem-c'],
      ['mem-b', 'created:mem-a,mem-b'],
      ['mem-b', 'membersAdded:mem-c'],
      ['mem-b', 'membersRemoved:mem-b'],
      ['mem-c', 'membersAdded:mem-c'],
      ['mem-c', 'membersRemoved:mem-b'],
      ['mem-c', 'membersRemoved:mem-c'],
    ]);
    expect(await groups.listChats('mem-c', { limit: 10 })).toEqual({ chats: [], more: false });
    expect(await groups.listChats('mem-b', { limit: 10 })).toEqual({ chats: [], more: false });
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
    expect(retry).toEqual({ messageId: first.messageId, ts: 5, dup: true });
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
    const dupOfFirst = { messageId: first.messageId, ts: 5, dup: true };
    expect(dup1).toEqual(dupOfFirst);
    expect(dup2).toEqual(dupOfFirst);
    expect(fresh).toMatchObject({ ts: 8, dup: false });
    const freshId = (fresh as { messageId: string }).messageId;
    expect(dup3).toEqual({ messageId: freshId, ts: 8, dup: true });

    // Same batch, and racing stores (two pools, two nodes) with the same key.
    const other = await fx.store();
    const racing = await Promise.all([
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
      store.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
      other.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
      other.send(sendInput('idem-a', chatId, { clientMsgId: 'x2' })),
    ]);
    expect(new Set(racing.map((r) => r.messageId)).size).toBe(1);
    expect(racing.filter((r) => !r.dup)).toHaveLength(1);
    await store.fanoutIdle();
    await other.fanoutIdle();
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from inbox where chat_id = ${chatId} and message_id = ${racing[0]!.messageId}`.execute(
      fx.db,
    );
    expect(Number(rows[0]?.n)).toBe(2); // idem-b and idem-c; idem-a has no device
    const msgs = await fx.db
      .selectFrom('messages')
      .select('id')
      .where('sender_id', '=', 'idem-a')
      .where('kind', '=', 'message')
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
    await store.fanoutIdle();
    await expectContiguousSeqs(fx.db);
  });
});
