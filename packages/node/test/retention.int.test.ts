/**
 * Retention on one node (issue 8): delivered messages leave the database, anything older than
 * the retention period goes whether delivered or not, and a device away longer than it is told
 * it starts fresh and keeps working. Age is simulated by moving rows' times back with SQL (the
 * node's clock is real; the retention period is one minute, the cleanup runs every 100 ms).
 */
import { jsonCodec } from '@chat/protocol';
import type { ServerFrame } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, countRows, startSingleNode, waitFor } from '@chat/testkit';

const RETENTION_MS = 60_000;
let harness: SingleNode;
const clients: RawClient[] = [];

beforeAll(async () => {
  harness = await startSingleNode({
    nodeId: 'retention-node',
    env: {
      CHAT_RETENTION_MS: String(RETENTION_MS),
      CHAT_RETENTION_DELIVERED_GRACE_MS: '0',
      CHAT_CLEANUP_INTERVAL_MS: '100',
      CHAT_CLEANUP_PAUSE_MS: '0',
      CHAT_ACK_FLUSH_MS: '10',
    },
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await harness?.close();
});

async function connect(user: string, device = 'd1', autoAck = true): Promise<RawClient> {
  const client = await RawClient.ready({
    url: harness.node.url,
    codec: jsonCodec,
    user,
    device,
    autoAck,
  });
  clients.push(client);
  return client;
}

const count = (query: string, params: unknown[] = []): Promise<number> =>
  countRows(harness.sql, query, params);

type Evt = ServerFrame & { t: 'evt' };
const bodies = (client: RawClient): unknown[] =>
  client
    .events()
    .filter((e) => (e as Evt & { kind: string }).kind === 'message')
    .map((e) => (e as unknown as { body: unknown }).body);

it('deletes a message and its inbox events once every device of every member has it', async () => {
  const alice = await connect('del-alice');
  const bobPhone = await connect('del-bob', 'phone');
  const bobLaptop = await connect('del-bob', 'laptop', false);
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['del-bob'] })) as {
    chatId: string;
  };
  const { messageId } = (await alice.ok({ t: 'send', chatId, clientMsgId: 'c1', body: 'hi' })) as {
    messageId: string;
  };
  await bobPhone.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === messageId);
  const evt = await bobLaptop.next<Evt>(
    (f) => f.t === 'evt' && 'messageId' in f && f.messageId === messageId,
  );
  // The laptop has not acked: the message waits for it.
  await waitFor(async () =>
    expect(
      await count('select count(*) as n from inbox where message_id = $1 and user_id = $2', [
        messageId,
        'del-alice',
      ]),
    ).toBe(0),
  );
  expect(await count('select count(*) as n from messages where id = $1', [messageId])).toBe(1);

  bobLaptop.sendFrame({ t: 'ack', seq: evt.seq });
  await waitFor(async () => {
    expect(await count('select count(*) as n from messages where id = $1', [messageId])).toBe(0);
    expect(await count('select count(*) as n from inbox where message_id = $1', [messageId])).toBe(
      0,
    );
  });
});

it('deletes what is older than the retention period, delivered or not, and delivers the rest', async () => {
  const alice = await connect('age-alice');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['age-bob'] })) as {
    chatId: string;
  };
  const old = (await alice.ok({ t: 'send', chatId, clientMsgId: 'old', body: 'old' })) as {
    messageId: string;
  };
  // Bob is offline; the first message is made older than the retention period.
  await harness.sql.query('update messages set created_at = created_at - $2 where id = $1', [
    old.messageId,
    RETENTION_MS + 1000,
  ]);
  await harness.sql.query('update inbox set created_at = created_at - $2 where message_id = $1', [
    old.messageId,
    RETENTION_MS + 1000,
  ]);
  await alice.ok({ t: 'send', chatId, clientMsgId: 'new', body: 'new' });
  await waitFor(async () =>
    expect(await count('select count(*) as n from messages where id = $1', [old.messageId])).toBe(
      0,
    ),
  );
  expect(
    await count('select count(*) as n from inbox where message_id = $1', [old.messageId]),
  ).toBe(0);

  const bob = await connect('age-bob');
  await bob.ok({ t: 'sync', after: 0 });
  await waitFor(() => expect(bodies(bob)).toEqual(['new']));
});

it('removes a device away longer than the retention period; it is told and keeps working', async () => {
  const alice = await connect('away-alice');
  const phone = await connect('away-bob', 'phone');
  const tablet = await connect('away-bob', 'tablet', false);
  await tablet.close();
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['away-bob'] })) as {
    chatId: string;
  };
  await alice.ok({ t: 'send', chatId, clientMsgId: 'm1', body: 'one' });
  await waitFor(() => expect(bodies(phone)).toEqual(['one']));
  // The tablet's cursor holds bob's events back.
  await waitFor(async () =>
    expect(
      await count("select count(*) as n from inbox where user_id = 'away-bob'"),
    ).toBeGreaterThan(0),
  );

  await harness.sql.query(
    "update devices set last_active = last_active - $1 where user_id = 'away-bob' and device_id = 'tablet'",
    [RETENTION_MS + 1000],
  );
  await waitFor(async () => {
    expect(await count("select count(*) as n from devices where user_id = 'away-bob'")).toBe(1);
    // No cursor holds them back any more: the phone had acked everything.
    expect(await count("select count(*) as n from inbox where user_id = 'away-bob'")).toBe(0);
  });

  const back = await connect('away-bob', 'tablet');
  const welcome = await back.next((f) => f.t === 'welcome');
  expect(welcome).toMatchObject({ t: 'welcome', reset: true });
  const phoneWelcome = phone.frames.find((f) => f.t === 'welcome');
  expect(phoneWelcome).not.toHaveProperty('reset');
  // It keeps working: a sync from its old position, a new message, a reply.
  await back.ok({ t: 'sync', after: 0 });
  await alice.ok({ t: 'send', chatId, clientMsgId: 'm2', body: 'two' });
  await waitFor(() => expect(bodies(back)).toEqual(['two']));
  await back.ok({ t: 'send', chatId, clientMsgId: 'r1', body: 'back' });
  await waitFor(() => expect(bodies(alice)).toEqual(['one', 'two', 'back']));
  // Told once: the next connection is an ordinary one.
  await back.close();
  const again = await connect('away-bob', 'tablet');
  expect(again.frames.find((f) => f.t === 'welcome')).not.toHaveProperty('reset');
});
