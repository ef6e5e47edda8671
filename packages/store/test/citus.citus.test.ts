/**
 * The store on Citus (issue 15): the tables distributed by user and by chat, and the send path
 * in statements that each touch one shard. The stores' connections run with
 * `citus.multi_task_query_log_level = error`: a statement of theirs that would run on more
 * than one shard fails, and so does the test.
 */
import { sql } from 'kysely';
import { waitFor } from '@chat/testkit';
import { LOCK_SPACE, lockKeys } from '../src/key-locks';
import type { PgChatStore } from '../src/index';
import { expectContiguousSeqs, sendInput, settle, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let stores: PgChatStore[];

beforeAll(async () => {
  // The jest `citus` project: the fixture's database is on Citus, its stores' connections
  // refuse multi-shard statements (helpers.ts).
  fx = await storeFixture('citus');
  // Two stores, like two chat nodes, on single-shard connections.
  stores = [await fx.store(), await fx.store()];
});
afterAll(() => fx.close());

test('tables are distributed by user and by chat, co-located, small ones replicated', async () => {
  const { rows } = await sql<{
    table_name: string;
    citus_table_type: string;
    distribution_column: string;
    colocation_id: number;
  }>`select table_name::text, citus_table_type, distribution_column, colocation_id
     from citus_tables`.execute(fx.db);
  const byTable = new Map(rows.map((r) => [r.table_name, r]));
  const colocation = (table: string): number | undefined => byTable.get(table)?.colocation_id;
  for (const [table, column] of [
    ['users', 'id'],
    ['devices', 'user_id'],
    ['inbox', 'user_id'],
    ['user_chats', 'user_id'],
    ['receipt_marks', 'user_id'],
    ['attachment_fetches', 'user_id'],
    ['user_blocks', 'user_id'],
  ]) {
    expect({ table, ...byTable.get(table!) }).toMatchObject({
      table,
      citus_table_type: 'distributed',
      distribution_column: column,
      colocation_id: colocation('users'),
    });
  }
  for (const [table, column] of [
    ['chats', 'id'],
    ['chat_members', 'chat_id'],
    ['messages', 'chat_id'],
    ['message_attachments', 'chat_id'],
  ]) {
    expect({ table, ...byTable.get(table!) }).toMatchObject({
      table,
      citus_table_type: 'distributed',
      distribution_column: column,
      colocation_id: colocation('chats'),
    });
  }
  expect(colocation('chats')).not.toBe(colocation('users'));
  expect(byTable.get('fanout_marks')?.citus_table_type).toBe('reference');
});

test('sends from two nodes to chats on many shards: stored once, in every inbox once, seqs contiguous', async () => {
  const pairs = Array.from({ length: 24 }, (_, i) => [`cs-a${i}`, `cs-b${i}`] as const);
  const chats: { chatId: string; members: readonly [string, string] }[] = [];
  for (const [a, b] of pairs) {
    chats.push({ chatId: (await stores[0]!.createChat(a, [b], null, 1)).chatId, members: [a, b] });
  }
  // Every chat gets sends from both members through both stores at once: batches that span
  // shards, split per shard by the store.
  const sends = chats.flatMap(({ chatId, members }, i) =>
    [0, 1, 2].map((k) =>
      stores[(i + k) % 2]!.send(sendInput(members[k % 2]!, chatId, { clientMsgId: `k${k}` })),
    ),
  );
  const results = await Promise.all(sends);
  expect(results.every((r) => !r.dup)).toBe(true);
  // A retry of each is a dup with the same id.
  const retries = await Promise.all(
    chats.map(({ chatId, members }) =>
      stores[1]!.send(sendInput(members[0], chatId, { clientMsgId: 'k0' })),
    ),
  );
  expect(retries.every((r) => r.dup)).toBe(true);
  await Promise.all(stores.map((s) => settle(s)));

  const { rows } = await sql<{ user_id: string; messages: string; distinct_messages: string }>`
    select user_id, count(*) as messages, count(distinct (chat_id, message_id)) as distinct_messages
    from inbox where kind = 'message' and user_id like 'cs-%' group by user_id`.execute(fx.db);
  // Each member gets the messages of the other (a sender with no other device gets no copy
  // of their own): the first member sent k0 and k2, the second k1.
  const expected = new Map(
    chats.flatMap(({ members }) => [
      [members[0], 1],
      [members[1], 2],
    ]),
  );
  expect(new Map(rows.map((r) => [r.user_id, Number(r.messages)]))).toEqual(expected);
  for (const row of rows) expect(row.distinct_messages).toBe(row.messages);
  await expectContiguousSeqs(fx.db, true);
});

test('a routed step given keys of two shards fails instead of running on both', async () => {
  const { rows } = await sql<{ a: string; b: string }>`
    with keys as (
      select k, get_shard_id_for_distribution_column('users', k) as shard
      from unnest(array(select 'split-' || g from generate_series(1, 50) g)) k
    )
    select (select k from keys order by shard limit 1) as a,
           (select k from keys order by shard desc limit 1) as b`.execute(fx.db);
  const { a, b } = rows[0]!;
  const call = sql`select * from chat_append_events_at(
      ${a}::text, ${[a, b].sort()}::text[], ${[a, b]}::text[], array['message','message'],
      array['c','c'], array[1,1]::int8[], array['x','x'], array['hi','hi'],
      array['[]','[]']::jsonb[], array[null,null]::jsonb[], array[1,1]::int8[],
      array[null,null]::text[], array[null,null]::text[], array[null,null]::text[])`;
  await expect(call.execute(fx.db)).rejects.toThrow(/multi-task query/);
});

test('a chat change and a send to the chat take turns: the change holds the chat lock on the worker', async () => {
  const { chatId } = await stores[0]!.createChat('turn-a', ['turn-b'], null, 1);
  let sent = false;
  let send: Promise<unknown> | undefined;
  await fx.db.transaction().execute(async (tx) => {
    // What a membership change does first (chat-changes.ts lockChat).
    await lockKeys(tx, 'chat', [chatId], 'exclusive');
    send = stores[1]!.send(sendInput('turn-a', chatId)).then(() => {
      sent = true;
    });
    // The routed chat step waits for the lock on the worker that holds the chat's shard.
    await waitFor(async () => {
      const { rows } = await sql<{ result: string }>`
        select result from run_command_on_workers(
          $$select count(*) from pg_locks where locktype = 'advisory' and not granted$$)`.execute(
        fx.db,
      );
      expect(rows.reduce((n, r) => n + Number(r.result), 0)).toBeGreaterThan(0);
    });
    expect(sent).toBe(false);
  });
  await send;
  expect(sent).toBe(true);
});

test('a user step that runs on the coordinator holds its user locks on the worker until it commits', async () => {
  // chat_append_events has no distribution argument: Citus never hands a call of it to a
  // worker, as it does not for a routed call while the shard moves. Each statement inside goes
  // to the worker; the lock must last until the step commits, or two steps number one user's
  // events at once.
  const user = 'coordinator-step';
  await sql`insert into users (id) values (${user})`.execute(fx.db);
  const stepDb = fx.storeDb();
  let step: Promise<unknown> | undefined;
  try {
    await fx.db.transaction().execute(async (tx) => {
      // Holds seq 1 of the user uncommitted: the step numbers its event 1 (it cannot see this
      // row) and its insert waits for this transaction, after it took the user's lock.
      await sql`insert into inbox (user_id, seq, kind, chat_id, message_id, sender_id, body,
          attachments, created_at)
        values (${user}, 1, 'message', 'held-chat', 1, 'x', 'held', '[]', 1)`.execute(tx);
      step = sql`select * from chat_append_events(
          array[${user}]::text[], array[${user}]::text[], array['message'], array['c'],
          array[1]::int8[], array['x'], array['hi'], array['[]']::jsonb[], array[null]::jsonb[],
          array[1]::int8[], array[null]::text[], array[null]::text[], array[null]::text[])`.execute(
        stepDb,
      );
      const onWorkers = async (query: string): Promise<number> => {
        const { rows } = await sql<{ result: string }>`
          select result from run_command_on_workers(${query})`.execute(fx.db);
        return rows.reduce((n, r) => n + Number(r.result), 0);
      };
      await waitFor(async () =>
        expect(
          await onWorkers(
            "select count(*) from pg_locks where locktype = 'transactionid' and not granted",
          ),
        ).toBeGreaterThan(0),
      );
      expect(
        await onWorkers(
          `select count(*) from pg_locks where locktype = 'advisory' and granted
             and classid = ${LOCK_SPACE.user} and objid::int4 = hashtext('${user}')`,
        ),
      ).toBe(1);
      throw new Error('roll back');
    });
  } catch (err) {
    if (!(err instanceof Error) || err.message !== 'roll back') throw err;
  }
  // The held row rolled back: the step appends its event as seq 1.
  await expect(step).resolves.toMatchObject({ rows: [{ i: 1, seq: '1' }] });
});
