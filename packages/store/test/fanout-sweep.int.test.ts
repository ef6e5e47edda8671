/**
 * The sweeper taking over a node's fan-out (docs/durable-path.md): a node that still owes a
 * fan-out when its mark goes stale has it finished by another; if that node was only frozen
 * and wakes up, each event is still appended exactly once.
 */
import { sql } from 'kysely';
import { holdKeyLocks } from '@chat/testkit';
import { LOCK_SPACE } from '../src/index';
import type { Delivery, PgChatStore } from '../src/index';
import { ON_CITUS, inboxOf, sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

const DAY_MS = 24 * 3600 * 1000;
let fx: StoreFixture;

beforeAll(async () => {
  fx = await storeFixture('sweep');
});
afterAll(() => fx.close());

/** Polls with a deadline. */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sessions waiting for a lock in this test's database: on Citus, on the workers too. */
async function waitingForLocks(f: StoreFixture = fx): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`.execute(f.db);
  let waiting = Number(rows[0]!.n);
  if (ON_CITUS) {
    const { rows: onWorkers } = await sql<{ result: string }>`
      select result from run_command_on_workers($$
        select count(*) from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'$$)`.execute(f.db);
    for (const r of onWorkers) waiting += Number(r.result);
  }
  return waiting;
}

/** How many user steps one batch for `users` makes: one per shard on Citus. */
async function userStepsFor(users: readonly string[]): Promise<number> {
  if (!ON_CITUS) return 1;
  const { rows } = await sql<{ n: string }>`
    select count(distinct get_shard_id_for_distribution_column('users', u)) as n
    from unnest(${users}::text[]) as u`.execute(fx.db);
  return Number(rows[0]!.n);
}

/** Holds the users' locks (user steps wait for them) until released. */
function lockUsers(users: readonly string[], f: StoreFixture = fx): Promise<() => Promise<void>> {
  return holdKeyLocks(f.testDb.url, LOCK_SPACE.user, users, ON_CITUS ? 'users' : undefined);
}

function recorder(store: PgChatStore): Delivery[] {
  const seen: Delivery[] = [];
  store.onDeliveries((deliveries) => seen.push(...deliveries));
  return seen;
}

/** The `upto` of a node's fan-out mark as the database has it. */
async function markOf(f: StoreFixture, nodeId: string): Promise<number> {
  const { rows } = await sql<{ upto: string }>`
    select upto from fanout_marks where node_id = ${nodeId}`.execute(f.db);
  return Number(rows[0]?.upto ?? 0);
}

/** The `swept_upto` of a node's mark: set while (and after) a sweeper claimed it. */
async function claimOf(nodeId: string): Promise<number | null> {
  const { rows } = await sql<{ swept_upto: string | null }>`
    select swept_upto from fanout_marks where node_id = ${nodeId}`.execute(fx.db);
  return rows[0]?.swept_upto == null ? null : Number(rows[0].swept_upto);
}

const messageUsers = (deliveries: readonly Delivery[], messageId: string): string[] =>
  deliveries
    .filter((d) => d.event.kind === 'message' && d.event.messageId === messageId)
    .map((d) => d.userId)
    .sort();

test('a frozen node’s fan-out is finished by the sweeper; when it wakes it appends nothing again', async () => {
  const frozen = await fx.store();
  const sweeper = await fx.store();
  const fromFrozen = recorder(frozen);
  const fromSweeper = recorder(sweeper);
  const { chatId } = await frozen.createChat('fz-a', ['fz-b', 'fz-c'], null, Date.now());
  await frozen.fanoutIdle(); // the members' rows exist (on Citus the locks are taken on them)

  const steps = await userStepsFor(['fz-b', 'fz-c']);
  const release = await lockUsers(['fz-b', 'fz-c']);
  let sweep: Promise<{ nodes: number; messages: number; events: number }> | undefined;
  let messageId: string;
  try {
    // Stored and acked to the sender; its user step waits for the lock ("frozen").
    ({ messageId } = await frozen.send(sendInput('fz-a', chatId, { body: 'owed' })));
    await until(async () => (await waitingForLocks()) === steps);
    // A minute later by the sweeper's clock the frozen node's mark is stale: the sweeper marks
    // it swept and waits for the same lock.
    sweep = sweeper.sweepStale(Date.now() + 60_000, 15_000, DAY_MS);
    await until(async () => (await waitingForLocks()) === 2 * steps);
  } finally {
    await release();
  }
  const swept = await sweep!;
  await frozen.fanoutIdle();

  // It looked at every message the frozen node stored since its mark (the chat's creation
  // too, fanned out already) and appended the two events still owed.
  expect(swept.events).toBe(2);
  for (const user of ['fz-b', 'fz-c']) {
    const events = (await inboxOf(fx.db, user)).filter((e) => e.kind === 'message');
    expect(events.map((e) => e.messageId)).toEqual([messageId]);
  }
  // The frozen node got the lock first and left the events to the sweeper, which pushed them.
  expect(messageUsers(fromFrozen, messageId)).toEqual([]);
  expect(messageUsers(fromSweeper, messageId)).toEqual(['fz-b', 'fz-c']);

  // The sweeper moved the mark past the message: a later sweep finds nothing owed.
  const again = await sweeper.sweepStale(Date.now() + 60_000, 15_000, DAY_MS);
  expect(again.messages).toBe(0);
});

test('a stale mark with nothing owed is swept without appending, and dropped once forgotten', async () => {
  const sweeper = await fx.store();
  await sql`
    insert into fanout_marks (node_id, upto, heartbeat_at)
    values ('gone', ${Date.now() - 1000}, ${Date.now() - 2 * DAY_MS})`.execute(fx.db);
  const swept = await sweeper.sweepStale(Date.now(), 15_000, DAY_MS);
  expect(swept).toMatchObject({ messages: 0, events: 0 });
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from fanout_marks where node_id = 'gone'`.execute(fx.db);
  expect(Number(rows[0]!.n)).toBe(0);
});

test('a node sweeping its own mark writes no mark meanwhile: an acked event is not deleted under the sweep and appended again', async () => {
  // A send that fails UNAVAILABLE may have committed: the node sweeps its own mark after it.
  // Marks are written here by hand only, and no other node's mark holds deletes back: a
  // database of its own.
  const own = await storeFixture('own-sweep');
  try {
    await sweepOwnMarkCase(own);
  } finally {
    await own.close();
  }
});

async function sweepOwnMarkCase(own: StoreFixture): Promise<void> {
  const node = await own.store({ markIntervalMs: 3_600_000 }, { queryTimeoutMillis: 1_000 });
  const { chatId } = await node.createChat('os-a', ['os-b'], null, Date.now());
  const { chatId: lockedChat } = await node.createChat('os-a', ['os-c'], null, Date.now());
  await node.connectDevice('os-b', 'phone', Date.now());
  await node.fanoutIdle();
  await node.writeMark(); // the mark (and the lowest of all) is before the message below
  const { messageId, ts } = await node.send(sendInput('os-a', chatId, { body: 'acked' }));
  await node.fanoutIdle();
  const [first] = (await inboxOf(own.db, 'os-b')).filter((e) => e.kind === 'message');
  expect(first).toMatchObject({ messageId });

  const steps = await userStepsFor(['os-b']);
  const releaseUser = await lockUsers(['os-b'], own);
  try {
    const releaseChat = await holdKeyLocks(
      own.testDb.url,
      LOCK_SPACE.chat,
      [lockedChat],
      ON_CITUS ? 'chats' : undefined,
    );
    try {
      const failed = await node
        .send(sendInput('os-a', lockedChat, { body: 'times out' }))
        .catch((err: unknown) => err);
      expect(failed).toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await releaseChat();
    }
    // The sweep of the node's own mark reaches `acked` and waits for os-b's lock.
    await until(async () => (await waitingForLocks(own)) === steps);
    // Meanwhile the node would write its mark past `acked`, and the device acks it: with such a
    // mark, the cursor write deletes the acked event before the sweep has looked for it.
    await node.writeMark();
    await node.writeCursors([{ userId: 'os-b', deviceId: 'phone', seq: first!.seq }], Date.now());
  } finally {
    await releaseUser();
  }
  // Once the sweep is through, the node's mark moves past the failed send.
  await until(async () => {
    await node.writeMark();
    return (await markOf(own, node.nodeId)) > ts;
  });
  const copies = (await inboxOf(own.db, 'os-b')).filter(
    (e) => e.kind === 'message' && e.messageId === messageId && e.seq !== first!.seq,
  );
  expect(copies).toEqual([]);
  expect(await node.latestSeq('os-b')).toBe(first!.seq);
}

test('a node woken while a sweeper finishes its fan-out moves no mark past the claim: an acked event is not deleted under the claim and appended again', async () => {
  const woken = await fx.store({ markIntervalMs: 3_600_000 });
  const { chatId } = await woken.createChat('wk-a', ['wk-b'], null, Date.now());
  await woken.connectDevice('wk-b', 'phone', Date.now());
  await woken.fanoutIdle();
  await woken.writeMark(); // its last promise before it "froze": before the message below
  const { messageId, ts } = await woken.send(sendInput('wk-a', chatId, { body: 'delivered' }));
  await woken.fanoutIdle();
  const [first] = (await inboxOf(fx.db, 'wk-b')).filter((e) => e.kind === 'message');
  expect(first).toMatchObject({ messageId });
  const sweeper = await fx.store(); // its own mark is after the message

  const steps = await userStepsFor(['wk-b']);
  const release = await lockUsers(['wk-b']);
  let sweep: Promise<{ nodes: number; messages: number; events: number }> | undefined;
  try {
    // A minute later the woken node's mark is stale by the sweeper's clock: the claim's sweep
    // reaches the message and waits for wk-b's lock.
    sweep = sweeper.sweepStale(Date.now() + 60_000, 15_000, DAY_MS);
    // The claim is made (on Citus the other stores' beats to the reference table can wait on a
    // lock too, so the count of waiters alone does not tell).
    await until(
      async () => (await claimOf(woken.nodeId)) !== null && (await waitingForLocks()) >= steps,
    );
    const before = await markOf(fx, woken.nodeId);
    // The node wakes up: it owes nothing, and its mark would say "now". The device acks.
    await woken.writeMark();
    expect(await markOf(fx, woken.nodeId)).toBe(before);
    await woken.writeCursors([{ userId: 'wk-b', deviceId: 'phone', seq: first!.seq }], Date.now());
  } finally {
    await release();
  }
  await sweep!;
  const copies = (await inboxOf(fx.db, 'wk-b')).filter(
    (e) => e.kind === 'message' && e.messageId === messageId && e.seq !== first!.seq,
  );
  expect(copies).toEqual([]);
  expect(await woken.latestSeq('wk-b')).toBe(first!.seq);
  // The claim's sweep moved the mark when it was through; the node's own beats move it again.
  await woken.writeMark();
  expect(await markOf(fx, woken.nodeId)).toBeGreaterThan(ts);
});

test('a node sweeping its own mark leaves the mark below a message whose chat step is still running', async () => {
  // After a restore (a new store epoch) the node sweeps its own messages again. A message whose
  // chat step commits after the sweep read its page is not swept: a mark moved past it would
  // promise its fan-out before it is done (lost if the node died then).
  const node = await fx.store({ markIntervalMs: 3_600_000 });
  const { chatId: running } = await node.createChat('ow-a', ['ow-b'], null, Date.now());
  const { chatId: restored } = await node.createChat('ow-a', ['ow-c'], null, Date.now());
  await node.fanoutIdle();
  await node.writeMark();
  // A message whose event the restore lost: the sweep appends it again.
  const lost = await node.send(sendInput('ow-a', restored, { body: 'lost in the restore' }));
  await node.fanoutIdle();
  await sql`delete from inbox where user_id = 'ow-c' and message_id = ${lost.messageId}::int8`.execute(
    fx.db,
  );
  const seen = recorder(node); // from here: what the sweep appends

  const releaseChat = await holdKeyLocks(
    fx.testDb.url,
    LOCK_SPACE.chat,
    [running],
    ON_CITUS ? 'chats' : undefined,
  );
  let sending: ReturnType<PgChatStore['send']> | undefined;
  const sentAt = Date.now();
  try {
    sending = node.send(sendInput('ow-a', running, { body: 'still storing', now: sentAt }));
    await until(async () => (await waitingForLocks()) >= 1);
    node.storeEpochChanged();
    await until(async () => messageUsers(seen, lost.messageId).includes('ow-c'));
    // The sweep is through (it appended the lost event): the mark is still below the message
    // whose chat step waits, and so is the one the node writes next.
    expect(await markOf(fx, node.nodeId)).toBeLessThanOrEqual(sentAt);
    await node.writeMark();
    expect(await markOf(fx, node.nodeId)).toBeLessThanOrEqual(sentAt);
  } finally {
    await releaseChat();
  }
  const sent = await sending!;
  await node.fanoutIdle();
  await node.writeMark();
  expect(await markOf(fx, node.nodeId)).toBeGreaterThan(sentAt);
  const events = (await inboxOf(fx.db, 'ow-b')).filter((e) => e.kind === 'message');
  expect(events.map((e) => e.messageId)).toEqual([sent.messageId]);
});

test('a claim whose sweeper died is finished by the claimed node itself', async () => {
  const node = await fx.store({ markIntervalMs: 3_600_000, claimTakeoverMs: 0 });
  const { chatId } = await node.createChat('cl-a', ['cl-b'], null, Date.now());
  await node.fanoutIdle();
  await node.writeMark();
  const release = await lockUsers(['cl-b']);
  let sent: Awaited<ReturnType<PgChatStore['send']>>;
  let claimedUpto: number;
  try {
    // The message's user step waits; meanwhile a sweeper claims the node's mark past it, and
    // dies before its sweep: the node's own fan-out leaves the message to the claim.
    sent = await node.send(sendInput('cl-a', chatId, { body: 'claimed' }));
    claimedUpto = Date.now() + 1;
    await sql`update fanout_marks set swept_upto = ${claimedUpto}::int8
      where node_id = ${node.nodeId}`.execute(fx.db);
  } finally {
    await release();
  }
  await node.fanoutIdle();
  expect((await inboxOf(fx.db, 'cl-b')).filter((e) => e.kind === 'message')).toEqual([]);

  // The claim unfinished past claimTakeoverMs: the node sweeps it beside its beats.
  await node.writeMark();
  await until(async () => (await markOf(fx, node.nodeId)) === claimedUpto);
  const events = (await inboxOf(fx.db, 'cl-b')).filter((e) => e.kind === 'message');
  expect(events.map((e) => e.messageId)).toEqual([sent.messageId]);
});

test('a claim just made is left to its sweeper, and a clean stop keeps the claimed mark', async () => {
  const node = await fx.store({ markIntervalMs: 3_600_000 }); // claimTakeoverMs: 5 min
  await node.createChat('cs-a', ['cs-b'], null, Date.now());
  await node.fanoutIdle();
  await node.writeMark();
  const upto = await markOf(fx, node.nodeId);
  // A sweeper claims the mark and is still sweeping.
  await sql`update fanout_marks set swept_upto = ${Date.now() + 1}::int8
    where node_id = ${node.nodeId}`.execute(fx.db);
  await node.writeMark();
  expect(await markOf(fx, node.nodeId)).toBe(upto);
  // The node owes nothing, but its mark stays: it holds acked events back for the claim's sweep.
  await node.close();
  expect(await markOf(fx, node.nodeId)).toBe(upto);
});

test('once a claim is through, the node never writes its mark back below it', async () => {
  const node = await fx.store({ markIntervalMs: 3_600_000 });
  const { chatId } = await node.createChat('bk-a', ['bk-b'], null, Date.now());
  await node.fanoutIdle();
  const release = await lockUsers(['bk-b']);
  try {
    // Fan-out still owed from before the claim (its user step waits)...
    const { ts } = await node.send(sendInput('bk-a', chatId, { body: 'owed' }));
    // ... when a sweeper's claim past it is through (the mark as such a claim leaves it; the
    // node's own user step will find the message claimed and skip it).
    const claimed = Date.now() + 1;
    await sql`update fanout_marks set swept_upto = ${claimed}::int8, upto = ${claimed}::int8
      where node_id = ${node.nodeId}`.execute(fx.db);
    await node.writeMark();
    // Back at the owed message (old code), the mark would look claimed again and stay there.
    expect(await markOf(fx, node.nodeId)).toBe(claimed);
    expect(ts).toBeLessThan(claimed);
  } finally {
    await release();
  }
});
