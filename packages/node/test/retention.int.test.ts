/**
 * Retention on one node (issue 8): a message loses its text once its fan-out is done (the
 * inboxes have their own copies, deleted as every device acks them), and the rest of the row
 * (what read receipts need) goes once every recipient has read it; anything older than the
 * retention period goes whether delivered or read or not, and a device away longer than it is
 * told it starts fresh and keeps working. Age is simulated by moving rows' times back with SQL
 * (the node's clock is real; the retention period is one minute, the cleanup runs every
 * 100 ms).
 */
import { jsonCodec } from '@chat/protocol';
import type { ServerFrame } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, SDK_FEATURES, countRows, startSingleNode, waitFor } from '@chat/testkit';

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
    // Receipts as watermark frames, no echo of own sends: what the SDK asks for.
    features: SDK_FEATURES,
  });
  clients.push(client);
  return client;
}

const count = (query: string, params: unknown[] = []): Promise<number> =>
  countRows(harness.sql, query, params);

/** The message's row as retention left it, or undefined once deleted. */
async function messageRow(
  chatId: string,
  messageId: string,
): Promise<{ body: string | null; attachments: unknown; emptied: boolean } | undefined> {
  const { rows } = await harness.sql.query<{
    body: string | null;
    attachments: unknown;
    emptied: boolean;
  }>(
    `select body, attachments, content_removed_at is not null as emptied
     from messages where chat_id = $1 and id = $2`,
    [chatId, messageId],
  );
  return rows[0];
}

/** Cleanup passes completed so far (the node's /metrics). */
async function passes(): Promise<number> {
  const text = await fetch(`${harness.node.internalUrl}/metrics`).then((r) => r.text());
  const match = /^chat_retention_passes_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  if (match === null) throw new Error('no chat_retention_passes_total in /metrics');
  return Number(match[1]);
}

/** Waits until a whole cleanup pass has run after this call. */
async function afterFullPass(): Promise<void> {
  // A pass in progress may end first; the one after it started after this call.
  const seen = await passes();
  await waitFor(async () => expect(await passes()).toBeGreaterThanOrEqual(seen + 2));
}

type Evt = ServerFrame & { t: 'evt' };
const bodies = (client: RawClient): unknown[] =>
  client
    .events()
    .filter((e) => (e as Evt & { kind: string }).kind === 'message')
    .map((e) => (e as unknown as { body: unknown }).body);

it("removes a message's text once fanned out, and its inbox events once every device of every member has it", async () => {
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
  // The inboxes hold their own copy: the message row's text goes (no grace in this test)...
  await waitFor(async () =>
    expect(await messageRow(chatId, messageId)).toEqual({
      body: null,
      attachments: [],
      emptied: true,
    }),
  );
  // ...while bob's copy waits for the laptop, which has not acked.
  const bobsCopies = (): Promise<number> =>
    count(
      'select count(*) as n from inbox where user_id = $1 and chat_id = $2 and message_id = $3',
      ['del-bob', chatId, messageId],
    );
  await afterFullPass();
  expect(await bobsCopies()).toBe(1);
  bobLaptop.sendFrame({ t: 'ack', seq: evt.seq });
  await waitFor(async () => expect(await bobsCopies()).toBe(0));
});

it('lets a recipient read a message after its text is gone; the sender is told, and the rest goes once all have read it', async () => {
  const alice = await connect('late-alice');
  const bob = await connect('late-bob');
  const carol = await connect('late-carol');
  const { chatId } = (await alice.ok({
    t: 'createChat',
    members: ['late-bob', 'late-carol'],
  })) as { chatId: string };
  const { messageId } = (await alice.ok({
    t: 'send',
    chatId,
    clientMsgId: 'c1',
    body: 'see you at 8',
  })) as { messageId: string };
  const isMessage = (f: ServerFrame): boolean =>
    f.t === 'evt' && f.kind === 'message' && f.messageId === messageId;
  const isMark =
    (user: string, mark: 'delivered' | 'read') =>
    (f: ServerFrame): boolean =>
      f.t === 'receipts' && f.chatId === chatId && f.user === user && f[mark] === messageId;
  await bob.next(isMessage);
  await carol.next(isMessage);
  // Both phones acked it (the notification was shown): delivered.
  await alice.next(isMark('late-bob', 'delivered'));
  await alice.next(isMark('late-carol', 'delivered'));
  await waitFor(async () =>
    expect(await messageRow(chatId, messageId)).toMatchObject({ body: null, emptied: true }),
  );

  // Minutes later bob opens the chat and reads it: the read works, alice is told.
  await bob.ok({ t: 'read', chatId, messageId });
  await alice.next(isMark('late-bob', 'read'));
  // Carol has not read it: what her receipt needs stays.
  await afterFullPass();
  expect(await messageRow(chatId, messageId)).toBeDefined();

  await carol.ok({ t: 'read', chatId, messageId });
  await alice.next(isMark('late-carol', 'read'));
  await waitFor(async () => expect(await messageRow(chatId, messageId)).toBeUndefined());
  // Reading it again (from bob's other device, say) finds nothing to do, and is no error.
  await bob.ok({ t: 'read', chatId, messageId });
  expect(alice.frames.filter(isMark('late-bob', 'read'))).toHaveLength(1);
});

it('deletes an emptied message nobody read at the retention period', async () => {
  const alice = await connect('unread-alice');
  const bob = await connect('unread-bob');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['unread-bob'] })) as {
    chatId: string;
  };
  const { messageId } = (await alice.ok({ t: 'send', chatId, clientMsgId: 'c1', body: 'hi' })) as {
    messageId: string;
  };
  await bob.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === messageId);
  await waitFor(async () =>
    expect(await messageRow(chatId, messageId)).toMatchObject({ emptied: true }),
  );

  await harness.sql.query(
    'update messages set created_at = created_at - $3 where chat_id = $1 and id = $2',
    [chatId, messageId, RETENTION_MS + 1000],
  );
  await waitFor(async () => expect(await messageRow(chatId, messageId)).toBeUndefined());
  // bob had it delivered: reading it later is still accepted (it moves his read watermark).
  await waitFor(async () =>
    expect(await bob.request({ t: 'read', chatId, messageId })).toMatchObject({ t: 'ok' }),
  );
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
  await waitFor(async () =>
    expect(
      await count('select count(*) as n from inbox where chat_id = $1 and message_id = $2', [
        chatId,
        old.messageId,
      ]),
    ).toBe(1),
  );
  await harness.sql.query(
    'update messages set created_at = created_at - $3 where chat_id = $1 and id = $2',
    [chatId, old.messageId, RETENTION_MS + 1000],
  );
  await harness.sql.query(
    'update inbox set created_at = created_at - $3 where chat_id = $1 and message_id = $2',
    [chatId, old.messageId, RETENTION_MS + 1000],
  );
  await alice.ok({ t: 'send', chatId, clientMsgId: 'new', body: 'new' });
  await waitFor(async () =>
    expect(
      await count('select count(*) as n from messages where chat_id = $1 and id = $2', [
        chatId,
        old.messageId,
      ]),
    ).toBe(0),
  );
  // A retention pass may run between the two updates above: the inbox copy then goes a pass later.
  await waitFor(async () =>
    expect(
      await count('select count(*) as n from inbox where chat_id = $1 and message_id = $2', [
        chatId,
        old.messageId,
      ]),
    ).toBe(0),
  );

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
  // alice's own messages were sent from her only device: she gets bob's only.
  await waitFor(() => expect(bodies(alice)).toEqual(['back']));
  // Told once: the next connection is an ordinary one.
  await back.close();
  const again = await connect('away-bob', 'tablet');
  expect(again.frames.find((f) => f.t === 'welcome')).not.toHaveProperty('reset');
});
