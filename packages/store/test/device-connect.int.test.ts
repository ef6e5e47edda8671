/**
 * Batched device registration (DeviceConnector) against real Postgres: many concurrent
 * connects share statements and each still gets exactly its own device's state.
 */
import { sql } from 'kysely';
import type { PgChatStore } from '../src/index';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;

beforeAll(async () => {
  fx = await storeFixture('devconnect');
  store = await fx.store();
});
afterAll(() => fx.close());

test('a burst of connects shares statements and every device gets its own state', async () => {
  // Known users with events, one device of each already acked up to 1.
  const { chatId } = await store.createChat('dc-alice', ['dc-bob'], null, 1);
  await store.send(sendInput('dc-alice', chatId));
  await store.send(sendInput('dc-alice', chatId));
  await store.fanoutIdle();
  await store.connectDevice('dc-bob', 'old-phone', 1);
  await store.ack('dc-bob', 'old-phone', 1);
  // A device retention removed: it must be told to start fresh.
  await sql`insert into expired_devices (user_id, device_id, expired_at)
    values ('dc-bob', 'lost-tablet', 1)`.execute(fx.db);

  const before = store.connectStats;
  const fresh = Array.from({ length: 300 }, (_, i) => store.connectDevice(`dc-new-${i}`, 'd', 50));
  const known = [
    store.connectDevice('dc-bob', 'old-phone', 60),
    store.connectDevice('dc-bob', 'lost-tablet', 60),
    store.connectDevice('dc-alice', 'laptop', 60),
    // The same device twice in one burst: one registration, both answered.
    store.connectDevice('dc-alice', 'laptop', 61),
  ];
  const states = await Promise.all([...fresh, ...known]);
  const after = store.connectStats;

  for (const state of states.slice(0, 300)) {
    expect(state).toEqual({ latestSeq: 0, ackedSeq: 0, created: true, receipts: [] });
  }
  const [bobOld, bobLost, aliceLaptop, aliceLaptopAgain] = states.slice(300);
  // bob has 3 events: the chat's creation and two messages; alice (who sent them without a
  // device, so got no copies) only the creation.
  expect(bobOld).toEqual({ latestSeq: 3, ackedSeq: 1, created: false, receipts: [] });
  expect(bobLost).toEqual({
    latestSeq: 3,
    ackedSeq: 0,
    created: true,
    reset: true,
    receipts: [],
  });
  expect(aliceLaptop).toEqual({ latestSeq: 1, ackedSeq: 0, created: true, receipts: [] });
  expect(aliceLaptopAgain).toEqual(aliceLaptop);

  expect(after.connects - before.connects).toBe(304);
  // Batched: far fewer statements than connects (at most 2 run at once, the rest queue).
  expect(after.statements - before.statements).toBeLessThan(20);
  expect(after.largestBatch).toBeGreaterThan(50);

  const { rows } = await sql<{ n: string }>`
    select count(*) as n from devices where user_id like 'dc-new-%'`.execute(fx.db);
  expect(Number(rows[0]?.n)).toBe(300);
  const laptop = await fx.db
    .selectFrom('devices')
    .select(['last_active', 'created_seq'])
    .where('user_id', '=', 'dc-alice')
    .where('device_id', '=', 'laptop')
    .executeTakeFirstOrThrow();
  // The later of the two connects wins; the device starts at the user's latest seq.
  expect(Number(laptop.last_active)).toBe(61);
  expect(Number(laptop.created_seq)).toBe(1);
  const tomb = await sql`select 1 from expired_devices where device_id = 'lost-tablet'`.execute(
    fx.db,
  );
  expect(tomb.rows).toHaveLength(0);
});

test('connects racing sends to the same users neither deadlock nor lose a seq', async () => {
  const users = Array.from({ length: 20 }, (_, i) => `dc-race-${i}`);
  const { chatId } = await store.createChat(users[0]!, users.slice(1), null, 1);
  // Each sender has another device before the race: its own copy is then owed whichever of the
  // racing connects lands first (a sender with one device gets none).
  for (const u of users) await store.connectDevice(u, 'dev-other', 50);
  const work: Promise<unknown>[] = [];
  for (let round = 0; round < 10; round++) {
    for (const u of users) work.push(store.connectDevice(u, `dev-${round % 3}`, 100 + round));
    // Sent from a device of the sender's, which has another: the sender gets a copy too.
    work.push(store.send(sendInput(users[round]!, chatId, { deviceId: 'dev-0' })));
  }
  await Promise.all(work);
  await store.fanoutIdle();
  // Every member has the creation and the 10 messages, and a fresh connect sees all of them.
  for (const u of users) {
    expect(await store.connectDevice(u, 'dev-check', 200)).toMatchObject({ latestSeq: 11 });
  }
});

test('a device that was away gets the receipt watermarks that moved meanwhile', async () => {
  const { chatId } = await store.createChat('rm-alice', ['rm-bob', 'rm-carol'], null, 1);
  await store.connectDevice('rm-alice', 'phone', 100);
  await store.connectDevice('rm-alice', 'laptop', 100);
  // While the phone is away (last active at 100), bob's and carol's watermarks move.
  const { PgReceiptStore } = await import('../src/index');
  const receipts = new PgReceiptStore(fx.db);
  await receipts.recordDelivered(
    [
      { chatId, reader: 'rm-bob', upto: '5000', notify: ['rm-alice'] },
      { chatId, reader: 'rm-carol', upto: '4000', notify: ['rm-alice'] },
    ],
    150,
  );
  const phone = await store.connectDevice('rm-alice', 'phone', 200);
  expect(phone.receipts).toEqual([
    { chatId, reader: 'rm-bob', delivered: '5000', read: null },
    { chatId, reader: 'rm-carol', delivered: '4000', read: null },
  ]);
  // Nothing moved since: the next connect gets none.
  expect((await store.connectDevice('rm-alice', 'phone', 300)).receipts).toEqual([]);
  // A brand-new device has no messages to show ticks on: none either.
  expect((await store.connectDevice('rm-alice', 'tablet', 300)).receipts).toEqual([]);
});

test('a moving device that is registered and active is read without a write; any other is registered', async () => {
  const { chatId } = await store.createChat('mv-alice', ['mv-bob'], null, 1);
  await store.send(sendInput('mv-alice', chatId));
  await store.fanoutIdle();
  const now = 10 * 24 * 3600 * 1000;
  await store.connectDevice('mv-bob', 'phone', now);
  await store.ack('mv-bob', 'phone', 1);
  await store.connectDevice('mv-bob', 'stale', now - 2 * 24 * 3600 * 1000);
  await store.connectDevice('mv-bob', 'marks', now, { receiptEvents: false });
  const lastActive = async (device: string): Promise<number | null> => {
    const { rows } = await sql<{ last_active: string }>`
      select last_active from devices where user_id = 'mv-bob' and device_id = ${device}`.execute(
      fx.db,
    );
    return rows[0] === undefined ? null : Number(rows[0].last_active);
  };
  const registered = await store.connectDevice('mv-bob', 'phone', now + 1);
  const phoneActive = await lastActive('phone');
  const before = store.connectStats;

  const moved = await store.connectDevice('mv-bob', 'phone', now + 500, { moving: true });
  // The same state as a registration gives, and nothing written.
  expect(moved).toEqual(registered);
  expect(await lastActive('phone')).toBe(phoneActive);
  expect(store.connectStats.movesRead - before.movesRead).toBe(1);

  // Not registered yet, idle for more than a day, or taking receipts another way: registered.
  const unknown = await store.connectDevice('mv-bob', 'new', now + 500, { moving: true });
  expect(unknown).toMatchObject({ created: true, latestSeq: registered.latestSeq });
  expect(await lastActive('new')).toBe(now + 500);
  await store.connectDevice('mv-bob', 'stale', now + 500, { moving: true });
  expect(await lastActive('stale')).toBe(now + 500);
  await store.connectDevice('mv-bob', 'marks', now + 500, { moving: true });
  expect(await lastActive('marks')).toBe(now + 500);
  // A device retention removed meanwhile is told to start fresh, as at any connect.
  await sql`insert into expired_devices (user_id, device_id, expired_at)
    values ('mv-bob', 'phone', ${now + 600})`.execute(fx.db);
  const expired = await store.connectDevice('mv-bob', 'phone', now + 700, { moving: true });
  expect(expired).toMatchObject({ reset: true });
  expect(store.connectStats.movesRead - before.movesRead).toBe(1);

  // With a shorter retention the node asks for a shorter window: active 2 s ago is too long.
  const strict = await fx.store({ movingFreshMs: 1000 });
  await strict.connectDevice('mv-bob', 'tablet', now);
  await strict.connectDevice('mv-bob', 'tablet', now + 2000, { moving: true });
  expect(await lastActive('tablet')).toBe(now + 2000);
  expect(strict.connectStats.movesRead).toBe(0);
});
