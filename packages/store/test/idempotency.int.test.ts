/**
 * Idempotency is per (chat, sender, clientMsgId) (issue 16, item 11): a clientMsgId reused in
 * another chat is a new message there, never reported as a duplicate of the first; a retry in
 * the same chat is a duplicate, whether it comes later or in the same batch. Runs on plain
 * PostgreSQL and on Citus (the jest `citus` project), where the two chats may be on different
 * shards.
 */
import { sql } from 'kysely';
import type { PgChatStore } from '../src/index';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;

beforeAll(async () => {
  fx = await storeFixture('idempotency');
  store = await fx.store();
});
afterAll(() => fx.close());

async function storedCopies(chatId: string, clientMsgId: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select id::text as id from messages
    where chat_id = ${chatId} and sender_id = 'i-alice' and client_msg_id = ${clientMsgId}`.execute(
    fx.db,
  );
  return rows.map((r) => r.id);
}

it('stores the same clientMsgId once per chat, and answers a retry in the same chat as a duplicate', async () => {
  const first = (await store.createChat('i-alice', ['i-bob'], null, Date.now())).chatId;
  const second = (await store.createChat('i-alice', ['i-carol'], null, Date.now())).chatId;
  const send = (chatId: string, body: string) =>
    store.send(sendInput('i-alice', chatId, { clientMsgId: 'draft-1', body }));

  const inFirst = await send(first, 'to bob');
  const inSecond = await send(second, 'to carol');
  expect(inFirst.dup).toBe(false);
  expect(inSecond.dup).toBe(false);
  expect(await storedCopies(first, 'draft-1')).toEqual([inFirst.messageId]);
  expect(await storedCopies(second, 'draft-1')).toEqual([inSecond.messageId]);

  // The client's retry after a lost reply: the same chat, the same answer, nothing new.
  const retry = await send(first, 'to bob');
  expect(retry).toEqual({ messageId: inFirst.messageId, ts: inFirst.ts, dup: true });
  expect(await storedCopies(first, 'draft-1')).toEqual([inFirst.messageId]);

  // In one batch: one message per chat, the repeat in a chat is its duplicate.
  const [a, b, again] = await Promise.all([
    store.send(sendInput('i-alice', first, { clientMsgId: 'draft-2' })),
    store.send(sendInput('i-alice', second, { clientMsgId: 'draft-2' })),
    store.send(sendInput('i-alice', first, { clientMsgId: 'draft-2' })),
  ]);
  expect([a!.dup, b!.dup, again!.dup]).toEqual([false, false, true]);
  expect(again!.messageId).toBe(a!.messageId);
  expect(await storedCopies(first, 'draft-2')).toEqual([a!.messageId]);
  expect(await storedCopies(second, 'draft-2')).toEqual([b!.messageId]);
});
