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
    Array.from({ length: count }, () => {
      const chat = chats[pick(chats.length)]!;
      return store.send(sendInput(chat.members[pick(chat.members.length)]!, chat.chatId));
    }),
  );
}

/** Per user, the committed deliveries must be exactly what sync returns, message ids ascending. */
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
    const ids = messages.map((e) => BigInt(e.messageId));
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

it('commits 200 concurrent sends in fewer transactions, with contiguous seqs per user', async () => {
  const store = fx.store();
  const chats = await makeChats(store, 'g');
  const before = store.stats;
  const results = await sendMany(store, chats, 200, 42);

  expect(results.every((r) => !r.dup)).toBe(true);
  expect(new Set(results.map((r) => r.messageId)).size).toBe(200);
  const stats = store.stats;
  expect(stats.sends - before.sends).toBe(200);
  expect(stats.transactions - before.transactions).toBeLessThan(200);
  expect(stats.commits - before.commits).toBe(stats.transactions - before.transactions);
  expect(stats.largestBatch).toBeGreaterThan(1);

  const seqs = await expectContiguousSeqs(fx.db, true);
  const deliveries = results.flatMap((r) => r.deliveries);
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
  const a = fx.store({ maxBatchSize: 8, maxConcurrentBatches: 2 });
  const b = fx.store({ maxBatchSize: 8, maxConcurrentBatches: 2 });
  const chats = await makeChats(a, 'n');
  const [fromA, fromB] = await Promise.all([
    sendMany(a, chats, 150, 7),
    sendMany(b, chats, 150, 11),
  ]);
  const results = [...fromA, ...fromB];
  expect(new Set(results.map((r) => r.messageId)).size).toBe(300);
  expect(a.stats.transactions).toBeGreaterThan(1);
  expect(b.stats.transactions).toBeGreaterThan(1);
  await expectContiguousSeqs(fx.db, true);
  await expectDeliveriesMatchSync(
    a,
    results.flatMap((r) => r.deliveries),
  );
});
