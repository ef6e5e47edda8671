/**
 * A node frozen (SIGSTOP) for longer than its lease, then thawed (SIGCONT), under traffic:
 * while frozen its lease expires and its users are taken over by the other nodes; once thawed
 * it notices from the watch that it left the ring, refuses the users it no longer owns with
 * `moved` to their current owner, then registers again and rejoins: its users drain back to
 * it and no acked message is lost.
 *
 * Right after SIGCONT the node hears that its key is gone well before its new registration
 * lands, but that gap is only milliseconds wide. To look into it, node-3 reaches etcd through a
 * proxy that holds node-3's requests (etcd's answers and watch events still flow) from just
 * before SIGCONT until the test has probed it.
 */
import { jsonCodec } from '@chat/protocol';
import type { MovedFrame } from '@chat/protocol';
import {
  RawClient,
  TestCluster,
  createChats,
  deliveryProblems,
  expectAgreement,
  expectOnOwners,
  prng,
  readyElsewhereAt,
  readyOnAt,
  runLoad,
  sdkUser,
  seqLag,
  startHoldProxy,
  testToken,
  waitFor,
} from '@chat/testkit';
import type { HoldProxy, SdkUser } from '@chat/testkit';

const LEASE_TTL_SEC = 3;
const VICTIM = 'node-3';

let cluster: TestCluster;
let proxy: HoldProxy;
let users: SdkUser[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 2,
    leaseTtlSec: LEASE_TTL_SEC,
    nodeEnv: {
      CHAT_HEARTBEAT_MS: '1000',
      CHAT_HEARTBEAT_TIMEOUT_MS: '1000',
      CHAT_DRAIN_RATE: '20',
    },
  });
  proxy = await startHoldProxy(cluster.etcd.endpoint);
  await cluster.setMembers(['node-1', 'node-2', VICTIM]);
  await cluster.startNode(VICTIM, { CHAT_ETCD_ENDPOINTS: proxy.endpoint });
  await waitFor(async () => expectAgreement(cluster, ['a', 'b', 'c']), 15_000);
});
afterAll(async () => {
  proxy?.release();
  await Promise.all(users.map((u) => u.client.close()));
  await cluster?.close();
  await proxy?.close();
});

it('drops a frozen node from the ring, refuses its old users after the thaw, then rejoins with nothing lost', async () => {
  users = Array.from({ length: 45 }, (_, i) => sdkUser(cluster.registryUrl, `pz-${i}`));
  await Promise.all(users.map((u) => u.client.connect()));
  await expectOnOwners(cluster, users);
  const victims = users.filter((u) => u.client.state.node === VICTIM);
  expect(victims.length).toBeGreaterThanOrEqual(5);
  const chats = await createChats(users, { pairs: 23, groups: 5, groupSize: 6 }, prng(3));
  const load = runLoad({
    chats,
    ratePerSec: 100,
    durationMs: 30_000,
    maxMessages: 3_000,
    random: prng(5),
    tag: 'pause',
  });
  await waitFor(() => expect(load.acked.length).toBeGreaterThanOrEqual(200), 15_000);

  // Freeze node-3: its lease runs out and its users move to the two other nodes.
  const victim = cluster.node(VICTIM);
  const pausedAt = Date.now();
  victim.signal('SIGSTOP');
  await waitFor(
    async () =>
      expect((await cluster.registryRing()).nodes.find((n) => n.id === VICTIM)?.live).toBe(false),
    (LEASE_TTL_SEC + 5) * 1000,
    50,
  );
  await waitFor(
    () => {
      for (const u of victims) expect(readyElsewhereAt(u, pausedAt, VICTIM)).toBeDefined();
    },
    (LEASE_TTL_SEC + 10) * 1000,
    50,
  );
  const takeoverMs = Math.max(
    ...victims.map((u) => readyElsewhereAt(u, pausedAt, VICTIM)! - pausedAt),
  );
  console.log(
    `PAUSE_TAKEOVER_MS=${takeoverMs} (SIGSTOP of ${VICTIM} until its ${victims.length} users were ready elsewhere; lease TTL ${LEASE_TTL_SEC} s)`,
  );
  expect(takeoverMs).toBeLessThanOrEqual(LEASE_TTL_SEC * 1000 + 5_000);
  const ackedWhilePaused = load.acked.length;

  // Thaw it, holding its requests to etcd so that it cannot register again yet.
  proxy.holdRequests();
  const resumedAt = Date.now();
  // The pause outlasted its lease (the ring said it was not live): no bound on resumedAt -
  // pausedAt, the lease may have run out less than a TTL after SIGSTOP (last keepalive before).
  victim.signal('SIGCONT');
  const victimIds = victims.map((u) => u.id);
  await waitFor(async () => {
    const view = await cluster.ownersAt(VICTIM, victimIds);
    for (const id of victimIds)
      expect({ id, owner: view.owners[id] }).not.toEqual({ id, owner: VICTIM });
  }, 10_000);
  for (const u of victims.slice(0, 3)) {
    const route = await cluster.route(u.id);
    expect(route.node).not.toBe(VICTIM);
    const probe = await RawClient.connect({
      url: victim.url,
      codec: jsonCodec,
      token: testToken(u.id, 'probe'),
    });
    const moved = await probe.next<MovedFrame>((f) => f.t === 'moved');
    expect({ node: moved.node, url: moved.url }).toEqual({ node: route.node, url: route.url });
    expect((await probe.closed).code).toBe(4001);
    expect(probe.frames.some((f) => f.t === 'welcome')).toBe(false);
  }
  expect((await cluster.registryRing()).nodes.find((n) => n.id === VICTIM)?.live).toBe(false);
  console.log(`PAUSED_MS=${resumedAt - pausedAt} (SIGSTOP to SIGCONT of ${VICTIM})`);

  // Let it talk to etcd again: it registers anew and its users come back to it.
  proxy.release();
  await waitFor(
    async () =>
      expect((await cluster.registryRing()).nodes.find((n) => n.id === VICTIM)?.live).toBe(true),
    15_000,
    50,
  );
  await waitFor(
    () =>
      expectAgreement(
        cluster,
        users.map((u) => u.id),
      ),
    10_000,
  );
  await waitFor(
    () => {
      for (const u of victims) expect(readyOnAt(u, resumedAt, VICTIM)).toBeDefined();
    },
    15_000,
    50,
  );
  const rejoinMs = Math.max(...victims.map((u) => readyOnAt(u, resumedAt, VICTIM)! - resumedAt));
  console.log(
    `PAUSE_REJOIN_MS=${rejoinMs} (SIGCONT of ${VICTIM} until its users were ready on it again, including the time the test held its etcd requests)`,
  );
  await waitFor(() => expect(load.acked.length).toBeGreaterThan(ackedWhilePaused + 100), 15_000);
  load.stop();
  const result = await load.done;
  expect(result.failed).toEqual([]);
  await waitFor(() => expectOnOwners(cluster, users), 10_000);
  await waitFor(() => expect(deliveryProblems(result.acked, users)).toEqual([]), 20_000);
  await waitFor(async () => expect(await seqLag(cluster.sql, users)).toEqual([]), 10_000);
  for (const node of cluster.nodes.values()) expect(() => process.kill(node.pid, 0)).not.toThrow();
  console.log(`pause: ${result.acked.length} messages acked, all delivered`);
});
