/**
 * Clock skew (issue 20, item 5): one node's clock 5 s ahead, injected for real in its process
 * (CHAT_CLOCK_OFFSET_MS=5000).
 *
 * (a) Two nodes, users on both chatting in one chat, in turns: the order of the chat is the order
 *     the sends were acked in (message ids, and every device's events), whatever the clocks of
 *     the nodes that stored them; the `ts` of a message is its storing node's clock (printed).
 * (b) The retention cleanup on the skewed node: what expires is decided by the database's
 *     clock, so an event 3 s short of the retention period is kept by a node that thinks it is
 *     2 s past it, and deleted once the database's clock says it is.
 */
import { compareMessageIds, jsonCodec } from '@chat/protocol';
import type { ServerFrame } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import {
  RawClient,
  SDK_FEATURES,
  TestCluster,
  countRows,
  startSingleNode,
  waitFor,
} from '@chat/testkit';

const SKEW_MS = 5000;
const RETENTION_MS = 60_000;
/** How far short of the retention period the test's event is, by the database's clock. */
const SHORT_MS = 3000;

let cluster: TestCluster | undefined;
let single: SingleNode | undefined;
const clients: RawClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cluster?.close();
  await single?.close();
});

async function connect(url: string, user: string): Promise<RawClient> {
  const client = await RawClient.ready({
    url,
    codec: jsonCodec,
    user,
    autoAck: false,
    features: SDK_FEATURES,
  });
  clients.push(client);
  return client;
}

type Evt = ServerFrame & { t: 'evt'; kind: string; messageId: string; body: string; ts: number };
const messagesOf = (client: RawClient): Evt[] =>
  client.events().filter((e): e is Evt => (e as Evt).kind === 'message');

it('keeps a chat in the order its sends were acked in when one node is 5 s ahead', async () => {
  cluster = await TestCluster.start({ nodes: 1, members: 2 });
  await cluster.startNode('node-2', { CHAT_CLOCK_OFFSET_MS: String(SKEW_MS) });
  const c = cluster;
  await waitFor(async () => {
    const ring = (await (await fetch(`${c.registryUrl}/v1/ring`)).json()) as {
      nodes: Array<{ id: string; live: boolean; member: boolean }>;
    };
    expect(ring.nodes.filter((n) => n.live && n.member)).toHaveLength(2);
  }, 30_000);
  /** A fresh user id the registry places on `node`. */
  const userOn = async (node: string, prefix: string): Promise<string> => {
    for (let i = 0; i < 1000; i++)
      if ((await c.route(`${prefix}${i}`)).node === node) return `${prefix}${i}`;
    throw new Error(`no user on ${node}`);
  };
  const aliceId = await userOn('node-1', 'skew-alice-');
  const bobId = await userOn('node-2', 'skew-bob-');
  const alice = await connect(c.node('node-1').url, aliceId);
  const bob = await connect(c.node('node-2').url, bobId);
  const { chatId } = (await alice.ok({ t: 'createChat', members: [bobId] })) as {
    chatId: string;
  };

  const TURNS = 20;
  const sent: Array<{ messageId: string; ts: number; body: string; ackedAt: number }> = [];
  for (let i = 0; i < TURNS; i++) {
    // Taking turns: each send is acked before the next, on the other node, is made.
    const sender = i % 2 === 0 ? alice : bob;
    const body = `turn ${i}`;
    const { messageId, ts } = (await sender.ok({
      t: 'send',
      chatId,
      clientMsgId: `c${i}`,
      body,
    })) as { messageId: string; ts: number };
    sent.push({ messageId, ts, body, ackedAt: Date.now() });
  }

  // Ids follow the order of the acks.
  for (let i = 1; i < TURNS; i++)
    expect(compareMessageIds(sent[i - 1]!.messageId, sent[i]!.messageId)).toBeLessThan(0);
  // Each device gets the other's messages in that order.
  const fromOther = (mine: number): string[] =>
    sent.filter((_, i) => i % 2 !== mine).map((s) => s.body);
  await waitFor(() => expect(messagesOf(alice).map((e) => e.body)).toEqual(fromOther(0)));
  await waitFor(() => expect(messagesOf(bob).map((e) => e.body)).toEqual(fromOther(1)));

  // The ts of each message is its storing node's clock: node-2's are 5 s ahead.
  const skews = sent.map((s) => s.ts - s.ackedAt);
  const bobSkew = Math.min(...skews.filter((_, i) => i % 2 === 1));
  const aliceSkew = Math.max(...skews.filter((_, i) => i % 2 === 0));
  expect(bobSkew).toBeGreaterThan(SKEW_MS - 1000);
  expect(aliceSkew).toBeLessThan(1000);
  const inversions = sent.filter((s, i) => i > 0 && s.ts < sent[i - 1]!.ts).length;
  console.log(
    `clock skew: ${TURNS} sends in turns from node-1 and node-2 (+${SKEW_MS} ms): ids and ` +
      `every device's events in ack order; ts from node-2 ${bobSkew}+ ms ahead of the ack, ` +
      `ts inversions between turns ${inversions} of ${TURNS - 1} (ts is the storing node's clock)`,
  );
}, 90_000);

it('lets the database clock, not a skewed node, decide what retention deletes', async () => {
  single = await startSingleNode({
    nodeId: 'skew-retention',
    env: {
      CHAT_CLOCK_OFFSET_MS: String(SKEW_MS),
      CHAT_RETENTION_MS: String(RETENTION_MS),
      CHAT_CLEANUP_INTERVAL_MS: '100',
      CHAT_CLEANUP_PAUSE_MS: '0',
    },
  });
  const s = single;
  const alice = await connect(s.node.url, 'sr-alice');
  const bob = await connect(s.node.url, 'sr-bob');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['sr-bob'] })) as {
    chatId: string;
  };
  const { messageId } = (await alice.ok({
    t: 'send',
    chatId,
    clientMsgId: 'c1',
    body: 'almost 60 s old',
  })) as { messageId: string };
  await bob.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === messageId);

  const dbNow = async (): Promise<number> =>
    countRows(s.sql, `select (extract(epoch from clock_timestamp()) * 1000)::int8 as n`);
  // Bob has not acked: his copy waits for him or for the retention period.
  const bobsCopy = (): Promise<number> =>
    countRows(s.sql, `select count(*) as n from inbox where user_id = $1 and message_id = $2`, [
      'sr-bob',
      messageId,
    ]);
  const createdAt = (await dbNow()) - RETENTION_MS + SHORT_MS;
  await s.sql.query(`update inbox set created_at = $1 where chat_id = $2`, [createdAt, chatId]);
  await s.sql.query(`update messages set created_at = $1 where chat_id = $2 and id = $3`, [
    createdAt,
    chatId,
    messageId,
  ]);

  // Passes run meanwhile (every 100 ms); by the node's clock the event expired 2 s ago.
  const passes = async (): Promise<number> => {
    const text = await fetch(`${s.node.internalUrl}/metrics`).then((r) => r.text());
    return Number(/^chat_retention_passes_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
  };
  const seen = await passes();
  await waitFor(async () => expect(await passes()).toBeGreaterThanOrEqual(seen + 3));
  const ageAtCheck = (await dbNow()) - createdAt;
  expect(ageAtCheck).toBeLessThan(RETENTION_MS);
  expect(await bobsCopy()).toBe(1);

  // And once the database's clock says it is old enough, it goes.
  await waitFor(async () => expect(await bobsCopy()).toBe(0), SHORT_MS + 5000);
  const ageWhenGone = (await dbNow()) - createdAt;
  expect(ageWhenGone).toBeGreaterThanOrEqual(RETENTION_MS);
  console.log(
    `clock skew retention: node +${SKEW_MS} ms, retention ${RETENTION_MS} ms: the event was ` +
      `kept at age ${ageAtCheck} ms (the node's clock said ${ageAtCheck + SKEW_MS} ms) and ` +
      `deleted at age ${ageWhenGone} ms by the database's clock`,
  );
}, 90_000);
