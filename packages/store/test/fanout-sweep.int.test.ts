/**
 * The sweeper taking over a node's fan-out (docs/durable-path.md): a node that still owes a
 * fan-out when its mark goes stale has it finished by another; if that node was only frozen
 * and wakes up, each event is still appended exactly once.
 */
import { sql } from 'kysely';
import { holdKeyLocks } from '../../testkit/src/hold-locks';
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
async function waitingForLocks(): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`.execute(fx.db);
  let waiting = Number(rows[0]!.n);
  if (ON_CITUS) {
    const { rows: onWorkers } = await sql<{ result: string }>`
      select result from run_command_on_workers($$
        select count(*) from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'$$)`.execute(fx.db);
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
function lockUsers(users: readonly string[]): Promise<() => Promise<void>> {
  return holdKeyLocks(fx.testDb.url, LOCK_SPACE.user, users, ON_CITUS ? 'users' : undefined);
}

function recorder(store: PgChatStore): Delivery[] {
  const seen: Delivery[] = [];
  store.onDeliveries((deliveries) => seen.push(...deliveries));
  return seen;
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
