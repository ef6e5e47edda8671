/**
 * The per-connection rate limit at its defaults (50/s, burst 100, 50 strikes): every frame costs
 * a token before it is decoded, so a socket streaming undecodable or invalid frames is refused
 * and closed with 4029 like one streaming good frames, and other users do not notice it.
 */
import type { ServerFrame } from '@chat/protocol';
import { CloseCode, jsonCodec } from '@chat/protocol';
import type { CloseInfo, SingleNode } from '@chat/testkit';
import { RawClient, SDK_FEATURES, startSingleNode } from '@chat/testkit';

let h: SingleNode;
const open: RawClient[] = [];

beforeAll(async () => {
  h = await startSingleNode();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await h.close();
});

const connect = async (user: string, autoAck = false): Promise<RawClient> => {
  const c = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user,
    features: SDK_FEATURES,
    autoAck,
  });
  open.push(c);
  return c;
};

/** Undecodable, unknown and invalid frames, in turn. */
const badFrame = (i: number): string =>
  [
    'not json at all',
    JSON.stringify({ t: 'explode', id: i }),
    JSON.stringify({ t: 'send', id: i, chatId: 'c' }),
  ][i % 3]!;

const closedWithin = (c: RawClient, ms: number): Promise<CloseInfo | 'open'> =>
  Promise.race([
    c.closed,
    new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), ms).unref()),
  ]);

it('refuses and then closes a socket streaming invalid frames', async () => {
  const c = await connect('bad-streamer');
  const count = 400;
  for (let i = 0; i < count; i++) c.sendBytes(badFrame(i));
  expect(await closedWithin(c, 10_000)).toEqual({
    code: CloseCode.RATE_LIMITED,
    reason: 'rate limited',
  });
  const errs = c.frames.filter((f): f is ServerFrame & { t: 'err' } => f.t === 'err');
  // The burst is answered with the frames' own errors, then RATE_LIMITED until the strikes run out.
  expect(errs.some((e) => e.code === 'BAD_REQUEST')).toBe(true);
  expect(errs.filter((e) => e.code === 'RATE_LIMITED').length).toBeGreaterThan(0);
  expect(errs.length).toBeLessThan(count);
  // Refusals of a request with a readable id still carry it.
  expect(errs.some((e) => e.code === 'RATE_LIMITED' && e.id !== undefined)).toBe(true);
});

it('keeps other users under 500 ms p99 while a socket floods invalid frames', async () => {
  const pairs = [
    ['flood-a', 'flood-b'],
    ['flood-c', 'flood-d'],
  ] as const;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const chats: { sender: RawClient; chatId: string; tag: string }[] = [];
  for (const [from, to] of pairs) {
    const sender = await connect(from, true);
    const receiver = await connect(to, true);
    receiver.onFrame((f) => {
      if (f.t !== 'evt' || f.kind !== 'message' || typeof f.body !== 'string') return;
      const started = sentAt.get(f.body);
      if (started !== undefined) latencies.push(performance.now() - started);
    });
    const reply = await sender.ok({ t: 'createChat', members: [to] });
    chats.push({ sender, chatId: reply.chatId as string, tag: from });
  }

  // The flood: up to 8 sockets one after the other, each streaming 2000 invalid frames at wire
  // speed until the node closes it, for at most 8 seconds.
  let flooding = true;
  const floodCloses: number[] = [];
  let floodFrames = 0;
  let floodAnswered = 0;
  const flood = (async () => {
    const until = Date.now() + 8_000;
    for (let round = 0; round < 8 && flooding && Date.now() < until; round++) {
      const f = await RawClient.ready({
        url: h.node.url,
        codec: jsonCodec,
        user: `flooder-${round}`,
      });
      open.push(f);
      for (let i = 0; i < 2000; i++) f.sendBytes(badFrame(i));
      floodFrames += 2000;
      const closed = await closedWithin(f, 5_000);
      floodCloses.push(closed === 'open' ? 0 : closed.code);
      floodAnswered += f.frames.filter((x) => x.t === 'err').length;
    }
  })();

  // Meanwhile each sender sends 60 messages, one at a time, for at most 20 seconds.
  const until = Date.now() + 20_000;
  await Promise.all(
    chats.map(async ({ sender, chatId, tag }) => {
      for (let i = 0; i < 60 && Date.now() < until; i++) {
        const body = `${tag}-${i}`;
        sentAt.set(body, performance.now());
        await sender.ok({ t: 'send', chatId, clientMsgId: body, body });
      }
    }),
  );
  flooding = false;
  await flood;

  const expected = [...sentAt.keys()].length;
  // Every message arrived (polling with a deadline, not sleeping).
  const deadline = Date.now() + 10_000;
  while (latencies.length < expected && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  expect(latencies.length).toBe(expected);
  const sorted = [...latencies].sort((a, b) => a - b);
  const p = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
  console.log(
    `flood: ${floodFrames} invalid frames sent on ${floodCloses.length} sockets, ${floodAnswered} answered ` +
      `before the closes (${floodCloses.join(',')}); ` +
      `others' send->deliver over ${sorted.length} messages: p50 ${p(0.5).toFixed(1)} ms, ` +
      `p99 ${p(0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms`,
  );
  expect(floodCloses.length).toBeGreaterThan(0);
  expect(floodCloses.every((code) => code === CloseCode.RATE_LIMITED)).toBe(true);
  expect(p(0.99)).toBeLessThan(500);
});
