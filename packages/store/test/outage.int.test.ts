/** Postgres going away for real: a private server for this file, stopped and started again. */
import { startPostgres, waitFor } from '@chat/testkit';
import type { PostgresHandle } from '@chat/testkit';
import type { PgChatStore } from '../src/index';
import { expectContiguousSeqs, sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let pg: PostgresHandle;
let fx: StoreFixture;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await storeFixture('outage', pg.url);
});
afterAll(async () => {
  await fx?.close();
  await pg?.close();
});

it('fails sends with UNAVAILABLE while Postgres is down and recovers when it is back', async () => {
  const store: PgChatStore = await fx.store(
    {},
    { connectionTimeoutMillis: 1_000, queryTimeoutMillis: 2_000 },
  );
  const { chatId } = await store.createChat('out-a', ['out-b'], null, 1);
  const before = await store.send(sendInput('out-a', chatId, { clientMsgId: 'before' }));
  expect(before.dup).toBe(false);
  await store.fanoutIdle();

  await pg.stop();
  const started = Date.now();
  const attempts = await Promise.allSettled([
    store.send(sendInput('out-a', chatId, { clientMsgId: 'during' })),
    store.send(sendInput('out-b', chatId)),
  ]);
  expect(Date.now() - started).toBeLessThan(5_000);
  for (const attempt of attempts) {
    expect(attempt).toMatchObject({
      status: 'rejected',
      reason: { name: 'ChatError', code: 'UNAVAILABLE' },
    });
  }
  await expect(store.sync('out-b', 0, 10)).rejects.toMatchObject({ code: 'UNAVAILABLE' });

  await pg.start();
  // The client retries with the same clientMsgId; the pool reconnects on its own.
  const retried = await waitFor(
    () => store.send(sendInput('out-a', chatId, { clientMsgId: 'during' })),
    15_000,
    100,
  );
  expect(retried.dup).toBe(false);
  await store.fanoutIdle();
  const page = await store.sync('out-b', 0, 10);
  expect(page.events.map((e) => (e.kind === 'message' ? e.messageId : e.kind))).toEqual([
    'chat',
    before.messageId,
    retried.messageId,
  ]);
  await expectContiguousSeqs(fx.db, true);
});
