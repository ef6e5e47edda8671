/** Heartbeats, ack timeouts and the per-connection rate limit, with short configured intervals. */
import { ChatClient } from '@chat/client';
import type { EventFrame } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, startSingleNode, testToken, waitFor } from '@chat/testkit';

const HEARTBEAT_MS = 400;
const HEARTBEAT_TIMEOUT_MS = 400;
const ACK_TIMEOUT_MS = 300;
const PUSH_TRIES = 3;

let h: SingleNode;
beforeAll(async () => {
  h = await startSingleNode({
    env: {
      CHAT_HEARTBEAT_MS: String(HEARTBEAT_MS),
      CHAT_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS),
      CHAT_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      CHAT_PUSH_TRIES: String(PUSH_TRIES),
      CHAT_SWEEP_MS: '50',
      CHAT_RATE_PER_SEC: '20',
      CHAT_RATE_BURST: '20',
      CHAT_RATE_STRIKES: '30',
    },
  });
});
afterAll(async () => {
  await h.close();
});

it('pings with the latest seq and closes a client that stops answering with 4002', async () => {
  const c = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user: 'quiet',
    autoPong: false,
  });
  const openedAt = Date.now();
  expect(await c.next((f) => f.t === 'ping')).toEqual({ t: 'ping', seq: 0 });
  const closed = await c.closed;
  const elapsed = Date.now() - openedAt;
  expect(closed.code).toBe(4002);
  // Within heartbeat + timeout, plus sweep granularity and scheduling slack.
  expect(elapsed).toBeGreaterThanOrEqual(HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS - 50);
  expect(elapsed).toBeLessThan(HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS + 1500);
});

it('keeps a client that answers pings', async () => {
  const c = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'chatty' });
  await c.next((f) => f.t === 'ping');
  const pings = (): number => c.frames.filter((f) => f.t === 'ping').length;
  // Three heartbeats is more than one heartbeat + timeout: a missed pong would have closed it.
  await waitFor(
    () => expect(pings()).toBeGreaterThanOrEqual(3),
    4 * (HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS),
  );
  expect(c.ws.readyState).toBe(c.ws.OPEN);
  await c.close();
});

it('pushes an unacked event again, then closes with 4002', async () => {
  const sender = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'pusher' });
  const lazy = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'lazy' });
  const chatId = (await sender.ok({ t: 'createChat', members: ['lazy'] })).chatId as string;
  sender.sendFrame({ t: 'ack', seq: 1 });
  const sent = await sender.ok({ t: 'send', chatId, clientMsgId: 'm', body: 'ack me' });
  const closed = await lazy.closed;
  expect(closed.code).toBe(4002);
  const copies = lazy
    .events()
    .filter((e) => e.kind === 'message' && e.messageId === sent.messageId);
  expect(copies.length).toBe(PUSH_TRIES);
  await sender.close();
});

it('answers RATE_LIMITED past the rate, then closes with 4029 if it keeps on', async () => {
  const c = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'flood' });
  // The burst is served...
  for (let i = 0; i < 20; i++) c.sendFrame({ t: 'listChats', id: 1000 + i });
  await waitFor(() => expect(c.frames.filter((f) => f.t === 'ok')).toHaveLength(20));
  // ...what comes faster than the rate is refused, and a client that keeps on is cut off.
  for (let i = 0; i < 100; i++) c.sendFrame({ t: 'listChats', id: 2000 + i });
  const closed = await c.closed;
  expect(closed.code).toBe(4029);
  const limited = c.frames.filter((f) => f.t === 'err' && f.code === 'RATE_LIMITED');
  // At least CHAT_RATE_STRIKES refusals came before the close; on a slow machine a few more can,
  // since tokens refilled mid-flood start the count of consecutive refusals again.
  expect(limited.length).toBeGreaterThanOrEqual(30);
  expect(limited.length).toBeLessThan(100);
});

it('the SDK recovers from an ack-timeout close: it reconnects, syncs, and the app sees each event once', async () => {
  const sender = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user: 'sdk-sender',
    autoAck: true,
  });
  // An SDK that acks far too late, so the node's ack timeout fires on it.
  const client = new ChatClient({
    url: h.node.url,
    user: 'sdk-late',
    token: () => testToken('sdk-late', 'd1'),
    ackDelayMs: 60_000,
    ackEveryEvents: 1_000,
    backoffBaseMs: 20,
    backoffMaxMs: 200,
  });
  const seen: EventFrame[] = [];
  const states: string[] = [];
  client.on('event', (e) => seen.push(e));
  client.on('state', (s) => states.push(s.status));
  await client.connect();
  const chatId = (await sender.ok({ t: 'createChat', members: ['sdk-late'] })).chatId as string;
  const sent = await sender.ok({ t: 'send', chatId, clientMsgId: 'once', body: 'exactly once' });

  // Closed with 4002 after the retries, reconnected, synced, and ready again.
  await waitFor(
    () => expect(states.filter((s) => s === 'ready').length).toBeGreaterThanOrEqual(2),
    10_000,
  );
  expect(states).toContain('reconnecting');
  await waitFor(() => expect(client.state.status).toBe('ready'));
  expect(seen.filter((e) => e.kind === 'message' && e.messageId === sent.messageId)).toHaveLength(
    1,
  );
  expect(seen.map((e) => e.seq)).toEqual([1, 2]);
  await client.close();
  await sender.close();
});
