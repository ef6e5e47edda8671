/** Shared pieces of the store's integration tests (not a test file itself). */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { createCitusTestDatabase, createTestDatabase } from '@chat/testkit';
import type { TestDatabase } from '@chat/testkit';
import { createDatabase, migrate, PgChatStore } from '../src/index';
import type { Database, PgChatStoreOptions, SendInput } from '../src/index';
import type { DatabaseOptions } from '../src/pool';

/** The jest `citus` project runs the store suite on Citus (jest-citus-env.ts). */
export const ON_CITUS = process.env['CHAT_TEST_ENGINE'] === 'citus';

/** On Citus, the stores' statements must each stay on one shard: others fail. */
export const SINGLE_SHARD = { 'citus.multi_task_query_log_level': 'error' } as const;

export interface StoreFixture {
  readonly testDb: TestDatabase;
  /** A separate connection for assertions in SQL. */
  readonly db: Kysely<Database>;
  /**
   * Opens and starts another store (its own pool and node id, like another node); closed by
   * close().
   */
  store(options?: Partial<PgChatStoreOptions>, dbOptions?: DatabaseOptions): Promise<PgChatStore>;
  /**
   * Another connection pool like a store's (on Citus it refuses a statement that reaches more
   * than one shard), for the other stores a test builds; destroyed by close().
   */
  storeDb(): Kysely<Database>;
  close(): Promise<void>;
}

/** A fresh, migrated database; register `close` in afterAll. */
export async function storeFixture(
  prefix: string,
  adminUrl?: string,
  createDb: (prefix: string) => Promise<TestDatabase> = (p) =>
    ON_CITUS ? createCitusTestDatabase(p) : createTestDatabase(p, adminUrl),
): Promise<StoreFixture> {
  const testDb = await createDb(prefix);
  const db = createDatabase(testDb.url, { maxConnections: 2 });
  await migrate(db);
  const stores: PgChatStore[] = [];
  const pools: Kysely<Database>[] = [];
  const openPool = (dbOptions: DatabaseOptions = {}): Kysely<Database> =>
    createDatabase(testDb.url, {
      maxConnections: 4,
      ...(ON_CITUS ? { sessionSettings: SINGLE_SHARD } : {}),
      ...dbOptions,
    });
  return {
    testDb,
    db,
    store: async (options = {}, dbOptions = {}) => {
      const store = new PgChatStore(openPool(dbOptions), {
        maxMembersPerChat: 100,
        nodeId: `${prefix}-${stores.length + 1}`,
        ...options,
      });
      stores.push(store);
      await store.start();
      return store;
    },
    storeDb: () => {
      const pool = openPool();
      pools.push(pool);
      return pool;
    },
    close: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all(pools.map((p) => p.destroy()));
      await db.destroy();
      await testDb.drop();
    },
  };
}

let clientMsgCounter = 0;

export function sendInput(
  senderId: string,
  chatId: string,
  extra: Partial<SendInput> = {},
): SendInput {
  return {
    senderId,
    chatId,
    clientMsgId: `c${++clientMsgCounter}`,
    body: `hello ${clientMsgCounter}`,
    attachments: [],
    now: Date.now(),
    ...extra,
  };
}

/** Every user's inbox seqs, ascending. */
export async function inboxSeqs(db: Kysely<Database>): Promise<Map<string, number[]>> {
  const { rows } = await sql<{ user_id: string; seqs: string[] }>`
    select user_id, array_agg(seq order by seq) as seqs from inbox group by user_id`.execute(db);
  return new Map(rows.map((r) => [r.user_id, r.seqs.map(Number)]));
}

/**
 * Asserts each user's inbox holds contiguous seqs ending at their latest seq (acked events may
 * be gone from the front); with `fromOne`, exactly 1..latest.
 */
export async function expectContiguousSeqs(
  db: Kysely<Database>,
  fromOne = false,
): Promise<Map<string, number[]>> {
  const seqs = await inboxSeqs(db);
  const { rows: users } = await sql<{ id: string; latest: string }>`
    select u.id, greatest(u.next_seq - 1, coalesce(x.top, 0), coalesce(d.top, 0)) as latest
    from users u
    left join (select user_id, max(seq) as top from inbox group by user_id) x on x.user_id = u.id
    left join (select user_id, max(acked_seq) as top from devices group by user_id) d
      on d.user_id = u.id`.execute(db);
  for (const user of users) {
    const latest = Number(user.latest);
    const actual = seqs.get(user.id) ?? [];
    const first = fromOne ? 1 : latest - actual.length + 1;
    const expected = Array.from({ length: latest - first + 1 }, (_, i) => first + i);
    expect({ user: user.id, seqs: actual }).toEqual({ user: user.id, seqs: expected });
  }
  return seqs;
}

export async function countRows(db: Kysely<Database>, table: keyof Database): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Every inbox event of `user` as (seq, kind, message or change). */
export async function inboxOf(
  db: Kysely<Database>,
  user: string,
): Promise<{ seq: number; kind: string; messageId: string | null }[]> {
  const rows = await db
    .selectFrom('inbox')
    .select(['seq', 'kind', 'message_id'])
    .where('user_id', '=', user)
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({ seq: Number(r.seq), kind: r.kind, messageId: r.message_id }));
}

/** Lets every queued fan-out land, then writes the mark so acked events may be deleted. */
export async function settle(store: PgChatStore): Promise<void> {
  await store.fanoutIdle();
  await store.writeMark();
}
