/**
 * A device reading at ~1 KB/s while others flood its chats: the node's buffer for it stays
 * within the bound, its memory stays flat, a fast member keeps its latency, and the slow device
 * gets everything by sync in the end.
 */
import { jsonCodec } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import {
  RawClient,
  openSlowSocket,
  retryUnavailable,
  startSingleNode,
  testToken,
  waitFor,
} from '@chat/testkit';

const BOUND = 256 * 1024;
const MESSAGES = 3000;
const WARMUP = 1500;
const BODY = 'x'.repeat(4000);

let h: SingleNode;
beforeAll(async () => {
  h = await startSingleNode({
    env: {
      CHAT_MAX_BUFFERED_BYTES: String(BOUND),
      CHAT_RATE_PER_SEC: '100000',
      CHAT_RATE_BURST: '100000',
    },
  });
});
/** Undone after the test even when an assertion fails half-way. */
const afterCleanup: Array<() => void> = [];
afterAll(async () => {
  for (const undo of afterCleanup.splice(0)) undo();
  await h.close();
});

interface Stats {
  maxBufferedBytes: number;
  rssBytes: number;
}
const stats = async (): Promise<Stats> =>
  (await (await fetch(`${h.node.internalUrl}/v1/stats`)).json()) as Stats;

it('bounds the buffer of a slow reader without hurting anyone else', async () => {
  const sender = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user: 'flooder',
    autoAck: true,
  });
  const fast = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user: 'fast',
    autoAck: true,
  });
  const chatId = (await sender.ok({ t: 'createChat', members: ['slow', 'fast'] })).chatId as string;

  /** Sends `count` messages with a window of 64 in flight; returns each one's send-to-deliver ms on the fast member. */
  const flood = async (prefix: string, count: number): Promise<number[]> => {
    const latencies: number[] = [];
    const inflight: Array<Promise<void>> = [];
    for (let i = 0; i < count; i++) {
      const started = Date.now();
      inflight.push(
        // A busy shared Postgres may answer UNAVAILABLE; a client resends the same clientMsgId.
        retryUnavailable(() =>
          sender.ok({ t: 'send', chatId, clientMsgId: `${prefix}-${i}`, body: BODY }, 60_000),
        ).then(async (ok) => {
          await fast.next(
            (f) => f.t === 'evt' && f.kind === 'message' && f.messageId === ok.messageId,
            60_000,
          );
          latencies.push(Date.now() - started);
        }),
      );
      if (inflight.length >= 64) await inflight.shift();
    }
    await Promise.all(inflight);
    return latencies.sort((a, b) => a - b);
  };

  // Warm up with the same traffic while the slow device is offline, so the heap has grown to
  // its working size; then take the baselines.
  const baselineLatencies = await flood('warm', WARMUP);
  const before = await stats();
  const slow = await openSlowSocket(
    h.node.port,
    `/ws?token=${testToken('slow', 'phone')}`,
    jsonCodec.subprotocol,
    1024,
  );

  let maxBuffered = 0;
  let maxRss = before.rssBytes;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await stats();
      maxBuffered = Math.max(maxBuffered, s.maxBufferedBytes);
      maxRss = Math.max(maxRss, s.rssBytes);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let latencies: number[];
  try {
    latencies = await flood('flood', MESSAGES);
  } finally {
    sampling = false;
    await sampler;
  }
  process.stdout.write(
    `SLOW_READER max_buffered_kib=${Math.round(maxBuffered / 1024)} rss_growth_mib=${((maxRss - before.rssBytes) / 2 ** 20).toFixed(1)} ` +
      `median_ms flood/baseline=${latencies[Math.floor(latencies.length / 2)]}/${baselineLatencies[Math.floor(baselineLatencies.length / 2)]}\n`,
  );
  // Whatever is asserted below, the slow socket (which reads on a timer) must not outlive the
  // test: it would keep jest from exiting.
  afterCleanup.push(() => slow.destroy());

  // Everything that was sent is well past the bound, so only the bound can explain a small buffer.
  expect(MESSAGES * BODY.length).toBeGreaterThan(40 * BOUND);
  expect(maxBuffered).toBeLessThanOrEqual(BOUND + 64 * 1024);
  // Bounded, not zero: delivered receipts to the flooder and V8 heap growth add some. Alone the
  // growth is 7-12 MiB; in the full suite on 2 busy cores (GC running late) it reached 48 MiB
  // once. The byte bound above is the exact check; this one catches gross leaks.
  expect(maxRss - before.rssBytes).toBeLessThan(64 * 1024 * 1024);
  const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)]!;
  expect(median(latencies)).toBeLessThan(Math.max(100, 3 * median(baselineLatencies)));
  expect(slow.bytesRead()).toBeLessThan(MESSAGES * BODY.length);

  // The slow device comes back on a good link and syncs everything its inbox holds.
  slow.destroy();
  await slow.closed;
  const back = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user: 'slow',
    device: 'phone',
  });
  let more = true;
  while (more) {
    const after = Math.max(0, ...back.events().map((e) => e.seq));
    more = (await back.ok({ t: 'sync', after, limit: 500 })).more as boolean;
  }
  await waitFor(() =>
    expect(back.events().filter((e) => e.kind === 'message')).toHaveLength(MESSAGES + WARMUP),
  );
  const seqs = back.events().map((e) => e.seq);
  expect(seqs).toEqual(Array.from({ length: MESSAGES + WARMUP + 1 }, (_, i) => i + 1));
  await Promise.all([sender.close(), fast.close(), back.close()]);
}, 180_000);
