import type { InboxEvent } from '@chat/protocol';
import type { Delivery, PgChatStore } from '../src/index';
import { expectContiguousSeqs, sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;

beforeAll(async () => {
  fx = await storeFixture('groupcommit');
});
afterAll(() => fx.close());

/** Overlapping chats over ten users, so concurrent batches contend for the same user rows. */
async function makeChats(
  store: PgChatStore,
  prefix: string,
): Promise<{ chatId: string; members: string[] }[]> {
  const u = (i: number): string => `${prefix}${i}`;
  const groups = [
    [0, 1, 2, 3, 4],
    [3, 4, 5, 6, 7],
    [5, 6, 7, 8, 9],
    [0, 9, 5],
    [2, 7],
  ].map((g) => g.map(u));
  const chats = [];
  for (const [creator, ...rest] of groups) {
    const { chatId } = await store.createChat(creator!, rest, null, 1);
    chats.push({ chatId, members: [creator!, ...rest] });
  }
  return chats;
}

/** Deterministic pseudo-random picks (no flaky seeds). */
function picker(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
}

function sendMany(
  store: PgChatStore,
  chats: { chatId: string; members: string[] }[],
  count: number,
  seed: number,
) {
  const pick = picker(seed);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const chat = chats[pick(chats.length)]!;
      const sent = await store.send(
        sendInput(chat.members[pick(chat.members.length)]!, chat.chatId),
      );
      return { ...sent, chatId: chat.chatId };
    }),
  );
}

/**
 * Per user, the committed deliveries must be exactly what sync returns, and message ids of each
 * chat ascending in seq order (no two nodes stored into a chat out of order).
 */
async function expectDeliveriesMatchSync(
  store: PgChatStore,
  deliveries: readonly Delivery[],
): Promise<void> {
  const byUser = new Map<string, InboxEvent[]>();
  for (const d of deliveries) byUser.set(d.userId, [...(byUser.get(d.userId) ?? []), d.event]);
  for (const [userId, events] of byUser) {
    const page = await store.sync(userId, 0, 10_000);
    const messages = page.events.filter((e) => e.kind === 'message');
    expect(messages).toEqual([...events].sort((a, b) => a.seq - b.seq));
    expect(new Set(messages.map((e) => e.seq)).size).toBe(messages.length);
  }
}

/** A started store, with every event it pushes collected. */
async function collectingStore(
  options: Parameters<StoreFixture['store']>[0] = {},
): Promise<{ store: PgChatStore; deliveries: Delivery[] }> {
  const store = await fx.store(options);
  const deliveries: Delivery[] = [];
  store.onDeliveries((d) => deliveries.push(...d));
  return { store, deliveries };
}

it('commits 200 concurrent sends in fewer transactions, with contiguous seqs per user', async () => {
  const { store, deliveries: pushed } = await collectingStore();
  const chats = await makeChats(store, 'g');
  const before = store.stats;
  const results = await sendMany(store, chats, 200, 42);
  await store.fanoutIdle();

  expect(results.every((r) => !r.dup)).toBe(true);
  // Ids are unique within a chat (each chat numbers its own).
  expect(new Set(results.map((r) => `${r.chatId}:${r.messageId}`)).size).toBe(200);
  const stats = store.stats;
  expect(stats.sends - before.sends).toBe(200);
  expect(stats.transactions - before.transactions).toBeLessThan(200);
  expect(stats.commits - before.commits).toBe(stats.transactions - before.transactions);
  expect(stats.largestBatch).toBeGreaterThan(1);

  const seqs = await expectContiguousSeqs(fx.db, true);
  const deliveries = pushed.filter((d) => d.event.kind === 'message');
  expect(deliveries.length).toBeGreaterThan(200); // every recipient of every message
  const perUser = new Map<string, number[]>();
  for (const d of deliveries)
    perUser.set(d.userId, [...(perUser.get(d.userId) ?? []), d.event.seq]);
  for (const [userId, delivered] of perUser) {
    expect(new Set(delivered).size).toBe(delivered.length); // no duplicates
    for (const seq of delivered) expect(seqs.get(userId)).toContain(seq);
  }
  await expectDeliveriesMatchSync(store, deliveries);
});

it('does not deadlock when two stores (two nodes) send to the same users at once', async () => {
  // Small batches and two batches in flight per store: many overlapping transactions.
  const a = await collectingStore({ maxBatchSize: 8, maxConcurrentBatches: 2, maxFanoutBatch: 8 });
  const b = await collectingStore({ maxBatchSize: 8, maxConcurrentBatches: 2, maxFanoutBatch: 8 });
  const chats = await makeChats(a.store, 'n');
  const [fromA, fromB] = await Promise.all([
    sendMany(a.store, chats, 150, 7),
    sendMany(b.store, chats, 150, 11),
  ]);
  await a.store.fanoutIdle();
  await b.store.fanoutIdle();
  const results = [...fromA, ...fromB];
  expect(new Set(results.map((r) => `${r.chatId}:${r.messageId}`)).size).toBe(300);
  expect(a.store.stats.transactions).toBeGreaterThan(1);
  expect(b.store.stats.transactions).toBeGreaterThan(1);
  await expectContiguousSeqs(fx.db, true);
  await expectDeliveriesMatchSync(
    a.store,
    [...a.deliveries, ...b.deliveries].filter((d) => d.event.kind === 'message'),
  );
});
