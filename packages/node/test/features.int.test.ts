/**
 * Optional protocol features (packages/protocol/src/features.ts): a client that names none gets
 * protocol v1 as it was (its own messages echoed, a `receipt` event per message and moment); one
 * that opts into `no-echo` and `receipt-marks` gets neither, and watermark `receipts` frames.
 */
import type { ServerFrame } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, countRows, startSingleNode, waitFor } from '@chat/testkit';

let h: SingleNode;
const open: RawClient[] = [];

beforeAll(async () => {
  h = await startSingleNode({ env: { CHAT_ACK_FLUSH_MS: '50', CHAT_RECEIPT_FLUSH_MS: '50' } });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await h.close();
});

async function connect(user: string, features?: string[]): Promise<RawClient> {
  const c = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user,
    autoAck: true,
    ...(features ? { features } : {}),
  });
  open.push(c);
  return c;
}

type Evt = ServerFrame & { t: 'evt' };
const evts = (c: RawClient): Evt[] => c.frames.filter((f): f is Evt => f.t === 'evt');
const welcomeOf = (c: RawClient): ServerFrame & { t: 'welcome' } =>
  c.frames.find((f) => f.t === 'welcome') as ServerFrame & { t: 'welcome' };

/** The (status, messageId) of every receipt event a client got, sorted. */
function receiptEvents(c: RawClient): string[] {
  return evts(c)
    .flatMap((e) => (e.kind === 'receipt' ? [`${e.status} ${e.messageId} by ${e.user}`] : []))
    .sort();
}

it('protocol v1 without features: own messages echoed, one receipt event per message and moment', async () => {
  const alice = await connect('v1-alice');
  const bob = await connect('v1-bob');
  expect(welcomeOf(alice).features).toBeUndefined();
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['v1-bob'] })) as {
    chatId: string;
  };
  const ids: string[] = [];
  for (const body of ['one', 'two']) {
    const { messageId } = (await alice.ok({
      t: 'send',
      chatId,
      clientMsgId: body,
      body,
    })) as { messageId: string };
    ids.push(messageId);
  }
  // The sending device gets its own messages as events, as in v1.
  await waitFor(() =>
    expect(evts(alice).flatMap((e) => (e.kind === 'message' ? [e.messageId] : []))).toEqual(ids),
  );
  // bob's device acks both (autoAck): alice gets a delivered receipt event for each.
  await waitFor(() =>
    expect(receiptEvents(alice)).toEqual(ids.map((id) => `delivered ${id} by v1-bob`).sort()),
  );
  // Reading the second marks both read: a read receipt event for each, once.
  await bob.ok({ t: 'read', chatId, messageId: ids[1]! });
  await waitFor(() =>
    expect(receiptEvents(alice)).toEqual(
      [
        ...ids.map((id) => `delivered ${id} by v1-bob`),
        ...ids.map((id) => `read ${id} by v1-bob`),
      ].sort(),
    ),
  );
  // Reading again moves nothing: no more events. A later event (a new message) shows that
  // everything before it has arrived.
  await bob.ok({ t: 'read', chatId, messageId: ids[1]! });
  const { messageId: third } = (await alice.ok({
    t: 'send',
    chatId,
    clientMsgId: 'three',
    body: 'three',
  })) as { messageId: string };
  await alice.next((f) => f.t === 'evt' && f.kind === 'message' && f.messageId === third);
  expect(receiptEvents(alice).filter((r) => r.startsWith('read'))).toHaveLength(2);
  expect(alice.frames.some((f) => f.t === 'receipts')).toBe(false);
});

it('with no-echo and receipt-marks: no echo, no receipt events, watermark frames', async () => {
  const features = ['no-echo', 'receipt-marks', 'not-a-feature'];
  const alice = await connect('f-alice', features);
  const bob = await connect('f-bob', features);
  expect(welcomeOf(alice).features).toEqual(['no-echo', 'receipt-marks']);
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['f-bob'] })) as {
    chatId: string;
  };
  const ids: string[] = [];
  for (const body of ['one', 'two']) {
    const { messageId } = (await alice.ok({
      t: 'send',
      chatId,
      clientMsgId: body,
      body,
    })) as { messageId: string };
    ids.push(messageId);
  }
  await bob.next((f) => f.t === 'evt' && f.kind === 'message' && f.messageId === ids[1]);
  await alice.next(
    (f) =>
      f.t === 'receipts' && f.chatId === chatId && f.user === 'f-bob' && f.delivered === ids[1],
  );
  await bob.ok({ t: 'read', chatId, messageId: ids[1]! });
  await alice.next(
    (f) => f.t === 'receipts' && f.chatId === chatId && f.user === 'f-bob' && f.read === ids[1],
  );
  expect(evts(alice).filter((e) => e.kind === 'message' || e.kind === 'receipt')).toEqual([]);
  expect(
    await countRows(
      h.sql,
      "SELECT count(*) AS n FROM inbox WHERE user_id = 'f-alice' AND kind <> 'chat'",
    ),
  ).toBe(0);
});
