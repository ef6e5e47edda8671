/**
 * An old backlog (issue 20, item 3): a device away for 29 days comes back to 5,000 events it
 * never acked. It gets every one of them, in seq order, in pages of at most `maxSyncLimit`,
 * within SYNC_BOUND_MS and with the node's resident memory growing by less than RSS_BOUND.
 * Events older than the 30-day retention period that it had not acked either (from before it
 * went away) were deleted by the cleanup, and its `welcome` says so (`reset: true`) until it
 * has acked past them.
 *
 * Age is simulated as in retention.int.test.ts: the node's clock is real and the rows are
 * written directly with SQL, their times set back.
 */
import { readFileSync } from 'node:fs';
import { defaultLimits, jsonCodec } from '@chat/protocol';
import type { ServerFrame } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, SDK_FEATURES, countRows, startSingleNode, waitFor } from '@chat/testkit';

const DAY_MS = 24 * 60 * 60 * 1000;
const BACKLOG = 5000;
/** Events from 35 to 31 days ago the device had not acked when it went away. */
const EXPIRED = 100;
const PAGE = defaultLimits.maxSyncLimit;
/** The stated bound (README, "Retention"): 5,000 events synced well within it on a busy CI box. */
const SYNC_BOUND_MS = 10_000;
const RSS_BOUND = 64 * 1024 * 1024;

let harness: SingleNode;
const clients: RawClient[] = [];

beforeAll(async () => {
  harness = await startSingleNode({
    nodeId: 'old-backlog-node',
    env: { CHAT_CLEANUP_INTERVAL_MS: '200', CHAT_CLEANUP_PAUSE_MS: '0' },
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await harness?.close();
});

async function connect(user: string, device: string): Promise<RawClient> {
  const client = await RawClient.ready({
    url: harness.node.url,
    codec: jsonCodec,
    user,
    device,
    features: SDK_FEATURES,
  });
  clients.push(client);
  return client;
}

/** Resident memory of the node process, bytes. */
function nodeRss(): number {
  const status = readFileSync(`/proc/${harness.node.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

/**
 * Writes `count` messages of alice's and bob's inbox events for them, seqs from `firstSeq`,
 * created from `from` on, `stepMs` apart: what the node would have stored over that time.
 */
async function writeBacklog(
  chatId: string,
  firstSeq: number,
  count: number,
  from: number,
  stepMs: number,
): Promise<void> {
  await harness.sql.query(
    `with m as (
       insert into messages (chat_id, id, sender_id, client_msg_id, body, created_at)
       select $1, top.id + 1 + g, 'ob-alice', 'old-' || ($2::int8 + g), 'm' || ($2::int8 + g),
         $4::int8 + g * $5::int8
       from generate_series(0, $3 - 1) g,
         (select coalesce(max(id), 0) as id from messages where chat_id = $1) top
       returning id, client_msg_id, body, created_at
     )
     insert into inbox (user_id, seq, kind, chat_id, message_id, sender_id, body, created_at)
     select 'ob-bob', substr(client_msg_id, 5)::int8, 'message', $1, id, 'ob-alice', body,
       created_at
     from m`,
    [chatId, firstSeq, count, from, stepMs],
  );
}

type Evt = ServerFrame & { t: 'evt'; seq: number; body?: string };

it('syncs a 29-day backlog of 5,000 events in order, in pages, in bounded time and memory; expired events are gone and the device is told', async () => {
  const alice = await connect('ob-alice', 'd1');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['ob-bob'] })) as {
    chatId: string;
  };
  const bobAway = await connect('ob-bob', 'phone');
  await bobAway.close();
  // What bob's inbox held before the backlog (the chat event): acked before he went away.
  const base = await countRows(harness.sql, `select max(seq) as n from inbox where user_id = $1`, [
    'ob-bob',
  ]);
  const now = Date.now();
  await harness.sql.query(
    `update devices set acked_seq = $2, last_active = $3 where user_id = $1`,
    ['ob-bob', base, now - 29 * DAY_MS],
  );
  await writeBacklog(chatId, base + 1, EXPIRED, now - 35 * DAY_MS, DAY_MS / 25);
  const firstKept = base + EXPIRED + 1;
  await writeBacklog(chatId, firstKept, BACKLOG, now - 29 * DAY_MS, Math.floor(DAY_MS / 180));

  // The cleanup deletes what is older than 30 days, and only that.
  const inboxOf = (from: number, to: number): Promise<number> =>
    countRows(
      harness.sql,
      `select count(*) as n from inbox where user_id = $1 and seq between $2 and $3`,
      ['ob-bob', from, to],
    );
  await waitFor(async () => expect(await inboxOf(base + 1, firstKept - 1)).toBe(0), 30_000);
  expect(await inboxOf(firstKept, firstKept + BACKLOG - 1)).toBe(BACKLOG);

  const rssBefore = nodeRss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, nodeRss())), 10);
  const started = performance.now();
  let syncMs = 0;
  let bob!: RawClient;
  const pageSizes: number[] = [];
  try {
    bob = await connect('ob-bob', 'phone');
    const welcome = await bob.next<ServerFrame & { t: 'welcome' }>((f) => f.t === 'welcome');
    expect(welcome.reset).toBe(true);
    let after = base;
    for (let page = 0; page < BACKLOG / PAGE + 2; page++) {
      const seen = bob.events().length;
      const reply = (await bob.ok({ t: 'sync', after, limit: PAGE })) as {
        seq: number;
        more: boolean;
      };
      const events = bob.events().slice(seen) as Evt[];
      pageSizes.push(events.length);
      if (events.length > 0) after = events[events.length - 1]!.seq;
      if (!reply.more) break;
    }
    syncMs = performance.now() - started;
  } finally {
    clearInterval(sampler);
  }

  const events = bob.events() as Evt[];
  expect(events.map((e) => e.seq)).toEqual(
    Array.from({ length: BACKLOG }, (_, i) => firstKept + i),
  );
  expect(events.map((e) => e.body)).toEqual(
    Array.from({ length: BACKLOG }, (_, i) => `m${firstKept + i}`),
  );
  expect(Math.max(...pageSizes)).toBeLessThanOrEqual(PAGE);
  expect(pageSizes.filter((n) => n > 0)).toHaveLength(BACKLOG / PAGE);
  expect(syncMs).toBeLessThan(SYNC_BOUND_MS);
  expect(rssPeak - rssBefore).toBeLessThan(RSS_BOUND);
  console.log(
    `old backlog: ${BACKLOG} events in ${pageSizes.filter((n) => n > 0).length} pages of ` +
      `<= ${PAGE} synced in ${Math.round(syncMs)} ms (bound ${SYNC_BOUND_MS} ms); ` +
      `${EXPIRED} expired events gone, welcome reset; node RSS before ` +
      `${(rssBefore / 2 ** 20).toFixed(1)} MiB, peak ${(rssPeak / 2 ** 20).toFixed(1)} MiB`,
  );

  // Told until it has acked past what was deleted: once it has, a reconnect is plain.
  bob.sendFrame({ t: 'ack', seq: events[events.length - 1]!.seq });
  await waitFor(async () =>
    expect(
      await countRows(
        harness.sql,
        `select acked_seq as n from devices where user_id = $1 and device_id = $2`,
        ['ob-bob', 'phone'],
      ),
    ).toBe(firstKept + BACKLOG - 1),
  );
  await bob.close();
  const back = await connect('ob-bob', 'phone');
  const again = await back.next<ServerFrame & { t: 'welcome' }>((f) => f.t === 'welcome');
  expect(again.reset).toBeUndefined();
});
