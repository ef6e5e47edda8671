/**
 * Postgres hangs (issue 16, item 11): the node's send queue stays at CHAT_SEND_QUEUE_MAX and
 * every send past it is answered UNAVAILABLE at once, instead of piling up in memory until
 * the database answers again. After it does, the client's retries (same clientMsgId) land, and
 * every send that was acked is stored exactly once. Connects likewise: past
 * CHAT_CONNECT_QUEUE_MAX a new connection gets UNAVAILABLE and close 1013 at once.
 *
 * The hang is real: the node reaches its database through a TCP fault proxy whose blackhole
 * keeps the connections open and drops every byte, as a stopped Postgres server would.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'pg';
import { jsonCodec } from '@chat/protocol';
import type { FaultProxy, NodeProcess, TestDatabase } from '@chat/testkit';
import {
  RawClient,
  createEngineTestDatabase,
  startFaultProxy,
  startNodeProcess,
  waitFor,
} from '@chat/testkit';

const SEND_QUEUE_MAX = 40;
const CONNECT_QUEUE_MAX = 5;
const CONNECT_FLOOD = 40;
const BATCH_MAX = 8;
const FLOOD = 600;
/** "At once": well under the node's 10 s query timeout, which answers the hung batch. */
const PROMPT_MS = 2000;

let db: TestDatabase;
let proxy: FaultProxy;
let node: NodeProcess;
let sql: Pool;
const clients: RawClient[] = [];

beforeAll(async () => {
  db = await createEngineTestDatabase('queue_bounds');
  sql = new Pool({ connectionString: db.url, max: 2 });
  const url = new URL(db.url);
  proxy = await startFaultProxy({ target: `${url.hostname}:${url.port}` });
  url.host = proxy.address;
  node = await startNodeProcess({
    databaseUrl: url.toString(),
    env: {
      CHAT_SEND_QUEUE_MAX: String(SEND_QUEUE_MAX),
      CHAT_CONNECT_QUEUE_MAX: String(CONNECT_QUEUE_MAX),
      CHAT_BATCH_MAX: String(BATCH_MAX),
      CHAT_RATE_PER_SEC: '100000',
      CHAT_RATE_BURST: '100000',
    },
  });
});
afterAll(async () => {
  proxy?.blackhole(false);
  await Promise.allSettled(clients.map((c) => c.close()));
  await node?.stop();
  await proxy?.close();
  await sql?.end();
  await db?.drop();
});

/** Resident memory of the node process, bytes. */
function nodeRss(): number {
  const status = readFileSync(`/proc/${node.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

it('sheds sends past the queue bound with UNAVAILABLE while Postgres hangs, and stores every acked one after', async () => {
  const alice = await RawClient.ready({ url: node.url, codec: jsonCodec, user: 'qb-alice' });
  clients.push(alice);
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['qb-bob'] })) as {
    chatId: string;
  };
  await alice.ok({ t: 'send', chatId, clientMsgId: 'before', body: 'before the hang' });

  proxy.blackhole(true);
  const rssBefore = nodeRss();
  const body = 'x'.repeat(1000);
  const sentAt = new Map<number, number>();
  const firstId = 1_000_000;
  for (let i = 0; i < FLOOD; i++) {
    sentAt.set(firstId + i, Date.now());
    alice.sendFrame({ t: 'send', id: firstId + i, chatId, clientMsgId: `m${i}`, body });
  }
  const replyTo = (id: number) =>
    alice.frames.find((f) => (f.t === 'ok' || f.t === 'err') && f.id === id);

  // Everything past the bound (the queue, plus the one hung statement of at most BATCH_MAX)
  // is refused, promptly; the rest waits.
  const waiting = SEND_QUEUE_MAX + BATCH_MAX;
  await waitFor(() => {
    const answered = [...sentAt.keys()].filter((id) => replyTo(id) !== undefined).length;
    expect(answered).toBeGreaterThanOrEqual(FLOOD - waiting);
  }, PROMPT_MS);
  const refused = [...sentAt.keys()].filter((id) => replyTo(id) !== undefined);
  for (const id of refused) {
    const reply = replyTo(id)!;
    expect(reply).toMatchObject({ t: 'err', code: 'UNAVAILABLE' });
  }
  const unanswered = FLOOD - refused.length;
  expect(unanswered).toBeGreaterThan(0);
  expect(unanswered).toBeLessThanOrEqual(waiting);
  const rssGrowth = nodeRss() - rssBefore;
  process.stdout.write(
    `QUEUE_BOUND refused=${refused.length} waiting=${unanswered} (bound ${SEND_QUEUE_MAX} + batch ${BATCH_MAX}) rss_growth_mb=${(rssGrowth / 2 ** 20).toFixed(1)}\n`,
  );

  // Postgres answers again: the waiting sends are answered, and the refused ones are retried
  // with the same clientMsgId, as the SDK does, until they are acked.
  proxy.blackhole(false);
  await waitFor(
    () => expect([...sentAt.keys()].every((id) => replyTo(id) !== undefined)).toBe(true),
    30_000,
  );
  const acked = new Map<string, string>();
  for (let i = 0; i < FLOOD; i++) {
    const reply = replyTo(firstId + i)!;
    if (reply.t === 'ok') acked.set(`m${i}`, String((reply as { messageId?: unknown }).messageId));
  }
  for (let i = 0; i < FLOOD; i++) {
    const clientMsgId = `m${i}`;
    while (!acked.has(clientMsgId)) {
      const reply = await alice.request({ t: 'send', chatId, clientMsgId, body }, 30_000);
      if (reply.t === 'ok') {
        acked.set(clientMsgId, String((reply as { messageId?: unknown }).messageId));
      } else expect(reply).toMatchObject({ code: 'UNAVAILABLE' });
    }
  }

  const { rows } = await sql.query<{ client_msg_id: string; id: string }>(
    "select client_msg_id, id::text as id from messages where chat_id = $1 and kind = 'message'",
    [chatId],
  );
  const stored = new Map(rows.map((r) => [r.client_msg_id, r.id]));
  expect(rows).toHaveLength(FLOOD + 1);
  for (const [clientMsgId, messageId] of acked) expect(stored.get(clientMsgId)).toBe(messageId);
});

it('refuses connects past the connect queue bound with UNAVAILABLE and 1013 while Postgres hangs', async () => {
  proxy.blackhole(true);
  const connecting = await Promise.all(
    Array.from({ length: CONNECT_FLOOD }, (_, i) =>
      RawClient.connect({ url: node.url, codec: jsonCodec, user: `qb-user${i}` }),
    ),
  );
  clients.push(...connecting);
  const refused = (c: RawClient): boolean =>
    c.frames.some((f) => f.t === 'err' && f.code === 'UNAVAILABLE');
  // The queue and the (at most two) registration statements hanging in Postgres hold the rest.
  await waitFor(
    () =>
      expect(connecting.filter(refused).length).toBeGreaterThanOrEqual(
        CONNECT_FLOOD - CONNECT_QUEUE_MAX - 2,
      ),
    PROMPT_MS,
  );
  const firstRefused = connecting.find(refused)!;
  expect((await firstRefused.closed).code).toBe(1013);
  const waiting = connecting.filter((c) => !refused(c)).length;
  process.stdout.write(`CONNECT_BOUND refused=${CONNECT_FLOOD - waiting} waiting=${waiting}\n`);
  expect(connecting.some((c) => c.frames.some((f) => f.t === 'welcome'))).toBe(false);

  // Postgres answers again: the statements that hung time out, and a device that reconnects
  // after its 1013, as clients do, is welcomed.
  proxy.blackhole(false);
  await waitFor(async () => {
    const again = await RawClient.connect({ url: node.url, codec: jsonCodec, user: 'qb-user0' });
    clients.push(again);
    const answer = await again.next((f) => f.t === 'welcome' || f.t === 'err');
    expect(answer.t).toBe('welcome');
  }, 30_000);
});
