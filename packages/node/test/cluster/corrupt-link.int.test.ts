/**
 * A corrupting RPC link (issue 20, item 4), against real node processes. node-2's RPC port is
 * reached only through a fault proxy (CHAT_RPC_ADVERTISE = the proxy); while users on both
 * nodes chat, the proxy flips one random byte in a share of the chunks it forwards, then stops.
 *
 * The damage is detected (frames carry a CRC-32 after the handshake, see packages/rpc), the link
 * is reset and dialled again, nothing is delivered garbled (every message body any device got,
 * pushed over RPC or synced, is the one its sender sent, under the chat and id it was acked
 * with), nothing acked is lost, per-user seqs stay contiguous, and once the corruption stops a
 * new message is pushed over RPC again within a few seconds.
 */
import type { FaultProxy, SdkUser, TestCluster } from '@chat/testkit';
import { waitFor } from '@chat/testkit';
import type { LinkChat } from './rpc-link-kit';
import {
  LinkTraffic,
  expectContiguousOnce,
  linkObserver,
  linkUser,
  messageKey,
  startProxiedLinkCluster,
} from './rpc-link-kit';

/** Share of forwarded chunks with a byte flipped while the corruption is on. */
const CORRUPT_P = 0.1;
const CORRUPT_MS = 8000;
const RECOVERY_BOUND_MS = 8000;
/** Long bodies, so that most flipped bytes land in message text (the case msgpack misses). */
const PADDING = ' the quick brown fox jumps over the lazy dog'.repeat(5);

let cluster: TestCluster;
let proxy: FaultProxy;
/** Closed after the test even when an assertion failed, so that jest can exit. */
const closers: Array<() => Promise<unknown>> = [];
let exits: Map<string, number | string>;

beforeAll(async () => {
  ({ cluster, proxy, exits } = await startProxiedLinkCluster({ CHAT_HEARTBEAT_MS: '1000' }));
}, 60_000);
afterAll(async () => {
  proxy?.corrupt(false);
  await Promise.allSettled(closers.map((close) => close()));
  await cluster?.close();
  await proxy?.close();
});

/** A link user closed after the test. */
function closingUser(id: string): SdkUser {
  const user = linkUser(cluster.registryUrl, id);
  closers.push(() => user.client.close());
  return user;
}

it('detects every corrupted frame, resets the link, delivers nothing garbled and loses nothing acked', async () => {
  const onNode1 = (await cluster.usersOn('node-1', 4, 'cl1-')).map(closingUser);
  const onNode2 = (await cluster.usersOn('node-2', 4, 'cl2-')).map(closingUser);
  const users = [...onNode1, ...onNode2];
  await Promise.all(users.map((u) => u.client.connect()));

  // A raw device of a node-2 user that never syncs: what it gets came over the RPC link.
  const { id: observerId, device: observer } = await linkObserver(cluster, 'node-2', 'clo-');
  closers.push(() => observer.close());

  const chats: LinkChat[] = [];
  for (let i = 0; i < onNode1.length; i++) {
    const a = onNode1[i]!;
    const b = onNode2[i]!;
    chats.push({ chatId: (await a.client.createChat([b.id])).chatId, members: [a, b] });
  }
  const group = [...onNode1.slice(0, 2), ...onNode2.slice(0, 2)];
  const { chatId: groupId } = await group[0]!.client.createChat(
    group.slice(1).map((m) => m.id),
    'group',
  );
  chats.push({ chatId: groupId, members: group });
  const probeSender = onNode1[0]!;
  const { chatId: probeChat } = await probeSender.client.createChat([observerId]);
  const traffic = new LinkTraffic({
    chats,
    probeSender,
    probeChat,
    observer,
    padding: PADDING,
    maxSendsPerRun: 1000,
  });

  await traffic.run(1000, 30);
  expect(await traffic.probe('baseline', 3000)).toBeLessThan(1000);

  const before = { ...proxy.stats };
  proxy.corrupt(CORRUPT_P);
  const probing = (async () => {
    // Messages to the observer too while the link is damaged: what it is pushed comes over RPC.
    for (let i = 0; i < 40; i++) {
      await traffic.send(probeSender, probeChat, `during-${i}`).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, CORRUPT_MS / 40));
    }
  })();
  await traffic.run(CORRUPT_MS, 30);
  await probing;
  proxy.corrupt(false);
  const healedAt = Date.now();
  const corrupted = proxy.stats.chunksCorrupted - before.chunksCorrupted;
  const linkResets = proxy.stats.accepted - before.accepted;

  await waitFor(() => traffic.probe(`healed-${Date.now()}`, 1000), RECOVERY_BOUND_MS, 0);
  const recoveryMs = Date.now() - healedAt;

  await traffic.run(1000, 30);
  expect(await traffic.failed()).toBe(0);

  // Nothing garbled: every message any device got is one that was sent, with its own text.
  const delivered = (): Array<{ key: string; body: string | null }> =>
    [...users.flatMap((u) => u.events), ...observer.events()].flatMap((e) =>
      e.kind === 'message' ? [{ key: messageKey(e.chatId, e.messageId), body: e.body }] : [],
    );
  const garbled = (): Array<{ key: string; body: string | null }> =>
    delivered().filter((d) => traffic.bodies.get(d.key) !== d.body);
  expect(garbled()).toEqual([]);

  // Lost forwards are repaired by the SDK's sync on the next push or heartbeat.
  const missingAtHeal = traffic.missing();
  await traffic.sendFinalRound();
  await waitFor(() => expect(traffic.missing()).toBe(0), 15_000);

  expect(garbled()).toEqual([]);
  expectContiguousOnce(users);

  console.log(
    `corrupt link: p=${CORRUPT_P} for ${CORRUPT_MS} ms; chunks corrupted ${corrupted}, ` +
      `link resets (reconnections) ${linkResets}, recovery after the corruption stopped ` +
      `${recoveryMs} ms (bound ${RECOVERY_BOUND_MS}); messages sent ${traffic.sends}, acked ${traffic.acked.length}, ` +
      `missing when healed ${missingAtHeal} (then 0), delivered ${delivered().length}, ` +
      `garbled ${garbled().length}`,
  );
  expect(corrupted).toBeGreaterThan(0);
  expect(linkResets).toBeGreaterThan(0);
  expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
  expect(exits.size).toBe(0);
}, 90_000);
