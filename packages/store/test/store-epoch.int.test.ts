/**
 * The store epoch (store-epoch.ts): stable while the database is the same one, new when it was
 * replaced by a copy, when its table was restored by a dump, or when an operator says so; the
 * pool's connection check; and the fan-out a restore took away, made good by the store.
 */
import { sql } from 'kysely';
import { snapshotDatabase, waitFor } from '@chat/testkit';
import {
  StoreEpochChangedError,
  createDatabase,
  newStoreEpoch,
  readStoreEpoch,
  toChatError,
} from '../src/index';
import { ON_CITUS, inboxOf, sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;

beforeAll(async () => {
  fx = await storeFixture('epoch');
});
afterAll(() => fx.close());

test('the same on every connection until an operator asks for a new one', async () => {
  const epoch = await readStoreEpoch(fx.db);
  expect(epoch).toMatch(/^[0-9a-f]{16}$/);
  const other = createDatabase(fx.testDb.url, { maxConnections: 1 });
  try {
    expect(await readStoreEpoch(other)).toBe(epoch);
    const renewed = await newStoreEpoch(other);
    expect(renewed).toMatch(/^[0-9a-f]{16}$/);
    expect(renewed).not.toBe(epoch);
    expect(await readStoreEpoch(fx.db)).toBe(renewed);
  } finally {
    await other.destroy();
  }
});

test('a dump restored into the database (the table made again) is a new epoch', async () => {
  const before = await readStoreEpoch(fx.db);
  // What `pg_restore --clean` does: drop the table and create it again with the same rows.
  await fx.db.transaction().execute(async (tx) => {
    await sql`create temporary table saved_epoch on commit drop as select * from store_epoch`.execute(
      tx,
    );
    await sql`drop table store_epoch`.execute(tx);
    await sql`
      create table store_epoch (
        id int primary key default 1 check (id = 1),
        token text not null,
        changed_at int8 not null
      )`.execute(tx);
    if (ON_CITUS) await sql`select create_reference_table('store_epoch')`.execute(tx);
    await sql`insert into store_epoch select * from saved_epoch`.execute(tx);
  });
  expect(await readStoreEpoch(fx.db)).not.toBe(before);
});

// A database copied with CREATE DATABASE ... TEMPLATE: plain PostgreSQL only (a Citus
// database spans the coordinator and its workers).
(ON_CITUS ? test.skip : test)('a database put back from a copy is a new epoch', async () => {
  const before = await readStoreEpoch(fx.db);
  const token = async (db: typeof fx.db): Promise<string | undefined> =>
    (await sql<{ token: string }>`select token from store_epoch`.execute(db)).rows[0]?.token;
  const tokenBefore = await token(fx.db);
  const snapshot = await snapshotDatabase(fx.testDb);
  try {
    await snapshot.restore();
    const restored = createDatabase(fx.testDb.url, { maxConnections: 1 });
    try {
      // The same rows, the token included: the database's identity is what differs.
      expect(await token(restored)).toBe(tokenBefore);
      expect(await readStoreEpoch(restored)).not.toBe(before);
    } finally {
      await restored.destroy();
    }
  } finally {
    await snapshot.drop();
  }
});

test('checkConnection runs once per new connection; a throw refuses and closes it', async () => {
  const epochs: string[] = [];
  let refuse = true;
  const db = createDatabase(fx.testDb.url, {
    maxConnections: 1,
    checkConnection: async (query) => {
      const [row] = await query('select chat_store_epoch() as epoch');
      epochs.push(String(row?.['epoch']));
      if (refuse) throw new StoreEpochChangedError('before', String(row?.['epoch']));
    },
  });
  try {
    const error = await sql`select 1`.execute(db).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreEpochChangedError);
    expect(toChatError(error).code).toBe('UNAVAILABLE');
    expect(epochs).toEqual([await readStoreEpoch(fx.db)]);
    refuse = false;
    // The refused connection is gone: the next one is new, and checked; then it is reused.
    await sql`select 1`.execute(db);
    await sql`select 1`.execute(db);
    expect(epochs).toHaveLength(2);
  } finally {
    await db.destroy();
  }
});

test('after a new epoch the store appends its own fan-out the database lost', async () => {
  // No mark is written by the timer during the test: the restored mark must stay as it is.
  const store = await fx.store({ markIntervalMs: 3_600_000 });
  const { chatId } = await store.createChat('ep-ann', ['ep-bob'], null, Date.now());
  await store.fanoutIdle();
  const before = Date.now();
  const sent = await store.send(sendInput('ep-ann', chatId, { now: before }));
  await store.fanoutIdle();
  const hasIt = async (): Promise<boolean> =>
    (await inboxOf(fx.db, 'ep-bob')).some((e) => e.messageId === sent.messageId);
  expect(await hasIt()).toBe(true);

  // The database as a backup taken between the chat step and the user step has it: the
  // message stored, its event not appended, the node's mark still before it.
  await sql`delete from inbox where user_id = 'ep-bob' and message_id = ${sent.messageId}`.execute(
    fx.db,
  );
  await sql`update fanout_marks set upto = ${before - 1} where node_id = ${store.nodeId}`.execute(
    fx.db,
  );
  const pushed: string[] = [];
  store.onDeliveries((ds) => {
    for (const d of ds) if (d.event.kind === 'message') pushed.push(d.event.messageId);
  });
  store.storeEpochChanged();
  await waitFor(async () => expect(await hasIt()).toBe(true));
  // Handed on for pushing once the sweep is through (it commits before it returns).
  await waitFor(() => expect(pushed).toContain(sent.messageId));
  // The mark is written again once the sweep is done.
  await waitFor(async () => {
    await store.writeMark();
    const { rows } = await sql<{ upto: string }>`
      select upto from fanout_marks where node_id = ${store.nodeId}`.execute(fx.db);
    expect(Number(rows[0]?.upto)).toBeGreaterThan(before);
  });
});

test('a statement that waited for a connection while a new epoch was found is refused', async () => {
  // Each statement on a new connection of its own, whose check waits while `gate` is shut: the
  // cursor write is held there while the epoch changes, as a write queued in the pool is while
  // another connection finds the restore.
  let gate: Promise<void> = Promise.resolve();
  let entered: () => void = () => undefined;
  let epoch = 'before';
  const applicationName = 'epoch-gated';
  const store = await fx.store(
    { markIntervalMs: 3_600_000 },
    {
      maxConnections: 1,
      idleTimeoutMillis: 1,
      applicationName,
      checkConnection: async () => {
        entered();
        await gate;
      },
      storeEpoch: () => epoch,
    },
  );
  await store.createChat('ep-dan', ['ep-eve'], null, Date.now());
  await store.fanoutIdle();
  await store.connectDevice('ep-eve', 'd1', Date.now());
  const cursor = async (): Promise<number> => {
    const { rows } = await sql<{ acked_seq: string }>`
      select acked_seq from devices where user_id = 'ep-eve' and device_id = 'd1'`.execute(fx.db);
    return Number(rows[0]?.acked_seq);
  };
  expect({ latest: await store.latestSeq('ep-eve'), cursor: await cursor() }).toEqual({
    latest: 1,
    cursor: 0,
  });
  // The store's idle connection is gone: its next statement opens one.
  await waitFor(async () => {
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from pg_stat_activity where application_name = ${applicationName}`.execute(
      fx.db,
    );
    expect(Number(rows[0]?.n)).toBe(0);
  });

  let open: () => void = () => undefined;
  gate = new Promise((resolve) => (open = resolve));
  const waiting = new Promise<void>((resolve) => (entered = resolve));
  const written = store.writeCursors([{ userId: 'ep-eve', deviceId: 'd1', seq: 1 }], Date.now());
  await waiting;
  epoch = 'after';
  open();
  // Refused: in a restored database it would raise the next seq past events nobody got.
  await expect(written).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  expect(await cursor()).toBe(0);
  // A cursor asked for under the new epoch is written.
  await store.writeCursors([{ userId: 'ep-eve', deviceId: 'd1', seq: 1 }], Date.now());
  expect(await cursor()).toBe(1);
});
