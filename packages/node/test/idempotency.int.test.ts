/**
 * A clientMsgId is a message's identity within its chat (issue 16, item 11): the same id in
 * another chat is another message, stored and delivered there; a retry in the same chat is
 * answered as a duplicate with the first message's id. Over the wire protocol, and through the
 * SDK, whose outbox keys pending sends the same way (two sends with one id to two chats at once
 * are two messages, not one reply shared).
 */
import { ChatClient } from '@chat/client';
import { jsonCodec } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, countRows, startSingleNode, testToken } from '@chat/testkit';

let h: SingleNode;
const clients: RawClient[] = [];
beforeAll(async () => {
  h = await startSingleNode();
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await h.close();
});

async function connect(user: string): Promise<RawClient> {
  const client = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user });
  clients.push(client);
  return client;
}

/** Messages stored in `chatId` with `clientMsgId` (and the id `messageId`, when given). */
const storedWith = (chatId: string, clientMsgId: string, messageId?: string): Promise<number> =>
  countRows(
    h.sql,
    `select count(*) as n from messages
     where chat_id = $1 and client_msg_id = $2 and ($3::int8 is null or id = $3::int8)`,
    [chatId, clientMsgId, messageId ?? null],
  );

it('stores a reused clientMsgId once per chat and answers a retry in the same chat as a duplicate', async () => {
  const alice = await connect('id-alice');
  const bob = await connect('id-bob');
  const toBob = (await alice.ok({ t: 'createChat', members: ['id-bob'] })).chatId as string;
  const toCarol = (await alice.ok({ t: 'createChat', members: ['id-carol'] })).chatId as string;

  const first = await alice.ok({ t: 'send', chatId: toBob, clientMsgId: 'draft', body: 'bob' });
  const second = await alice.ok({
    t: 'send',
    chatId: toCarol,
    clientMsgId: 'draft',
    body: 'carol',
  });
  expect(second.dup).toBeUndefined();
  expect(await storedWith(toBob, 'draft')).toBe(1);
  expect(await storedWith(toCarol, 'draft')).toBe(1);

  const retry = await alice.ok({ t: 'send', chatId: toBob, clientMsgId: 'draft', body: 'bob' });
  expect(retry).toMatchObject({ messageId: first.messageId, ts: first.ts, dup: true });
  expect(await storedWith(toBob, 'draft')).toBe(1);
  // Bob got the message once.
  await bob.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === first.messageId);
  expect(
    bob.events().filter((e) => e.kind === 'message' && e.messageId === first.messageId),
  ).toHaveLength(1);
});

it('sends one clientMsgId to two chats at once through the SDK as two messages', async () => {
  const client = new ChatClient({
    url: h.node.url,
    user: 'id-dora',
    token: () => testToken('id-dora', 'd1'),
  });
  await client.connect();
  try {
    const { chatId: toErin } = await client.createChat(['id-erin']);
    const { chatId: toFred } = await client.createChat(['id-fred']);
    const [a, b] = await Promise.all([
      client.send(toErin, 'hi erin', { clientMsgId: 'shared' }),
      client.send(toFred, 'hi fred', { clientMsgId: 'shared' }),
    ]);
    // Each reply is its own chat's message (ids are unique within a chat only, so the two may
    // be equal): the old SDK answered the second send with the first one's reply.
    expect(await storedWith(toErin, 'shared', a.messageId)).toBe(1);
    expect(await storedWith(toFred, 'shared', b.messageId)).toBe(1);
  } finally {
    await client.close();
  }
});
