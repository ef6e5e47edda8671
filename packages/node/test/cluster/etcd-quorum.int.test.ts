/**
 * etcd as a real 3-member cluster, every process configured with all three endpoints:
 * - one member killed (the leader, SIGKILL) changes nothing anyone sees: chatting goes on, no
 *   client reconnects, no node loses its registration lease, the ring stays;
 * - quorum lost (two members stopped) for 30 s: users keep chatting across nodes, the registry
 *   keeps routing by the last ring it saw, nodes keep their users and the ring they own by, and
 *   a ring change is refused by chatctl with a message that says quorum is lost;
 * - quorum back: every node registers again under a live lease, the registry and every node
 *   agree on the routes, and the same ring change now goes through.
 */
import { createEtcdClient } from '@chat/cluster';
import {
  TestCluster,
  createChats,
  deliveryProblems,
  prng,
  recordExits,
  runLoad,
  sdkUser,
  seqLag,
  waitFor,
  chatctl,
} from '@chat/testkit';
import type { SentMessage, SdkUser, TrafficChat } from '@chat/testkit';

/**
 * Short, so that a lease etcd let expire would show within the test, yet not so short that a
 * loaded machine misses the renewal window after the outage (a new leader extends each lease by
 * its TTL plus an election timeout).
 */
const LEASE_TTL_SEC = 5;
const OUTAGE_MS = 30_000;
const PREFIX = '/chat';
const MEMBERS = ['node-1', 'node-2', 'node-3'];

let cluster: TestCluster;
let etcd: ReturnType<typeof createEtcdClient>;
let chatctlEnv: Record<string, string>;
const users: SdkUser[] = [];
let chats: TrafficChat[] = [];
const acked: SentMessage[] = [];
const exited: string[] = [];
/** Registrations (node -> lease) just before quorum was lost. */
let leasesBeforeOutage: Record<string, string> = {};

/** Index of the member that leads now (asked of each member alone: status needs no quorum). */
async function leaderIndex(): Promise<number> {
  const { endpoints } = cluster.etcdCluster;
  const statuses = await Promise.all(
    endpoints.map(async (endpoint) => {
      const one = createEtcdClient({ endpoints: endpoint, callTimeoutMs: 1_000 });
      try {
        return await one.maintenance.status();
      } finally {
        one.close();
      }
    }),
  );
  const index = statuses.findIndex((s) => s.leader === s.header.member_id);
  if (index < 0) throw new Error('no member says it leads');
  return index;
}

/** Routes of `ids` at the registry, as "user->node" strings. */
async function routes(ids: readonly string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => `${id}->${(await cluster.route(id)).node}`));
}

/** Every node places `ids` where the registry routes them, on the registry's epoch. */
async function expectAgreement(ids: readonly string[]): Promise<void> {
  const { epoch } = await cluster.registryRing();
  const expected = await routes(ids);
  for (const node of cluster.nodes.keys()) {
    const view = await cluster.ownersAt(node, ids);
    expect({ node, epoch: view.epoch }).toEqual({ node, epoch });
    expect(ids.map((id) => `${id}->${view.owners[id]}`)).toEqual(expected);
  }
}

/** Client state changes (closes, reconnects, moves) seen since `since`. */
function stateChangesSince(since: number): string[] {
  return users.flatMap((u) =>
    u.states.filter((s) => s.at >= since).map((s) => `${u.id}:${s.status}@${s.node}`),
  );
}

function crossNode(sent: readonly SentMessage[]): number {
  return sent.filter((s) =>
    s.chat.members.some((m) => m.client.state.node !== s.sender.client.state.node),
  ).length;
}

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 4,
    members: 3,
    etcdMembers: 3,
    leaseTtlSec: LEASE_TTL_SEC,
  });
  etcd = createEtcdClient({ endpoints: cluster.etcdCluster.endpoints });
  chatctlEnv = { CHAT_ETCD_ENDPOINTS: cluster.etcdCluster.endpoint, CHAT_ETCD_PREFIX: PREFIX };
  recordExits(cluster, exited);
  users.push(...Array.from({ length: 24 }, (_, i) => sdkUser(cluster.registryUrl, `q-${i}`)));
  await Promise.all(users.map((u) => u.client.connect()));
  chats = await createChats(users, { pairs: 12, groups: 3, groupSize: 5 }, prng(31));
});
afterAll(async () => {
  await Promise.all(users.map((u) => u.client.close()));
  etcd?.close();
  await cluster?.close();
});

it('takes the loss of one member, the leader, without anything visible', async () => {
  const before = await cluster.registrations();
  expect(Object.keys(before).sort()).toEqual(['node-1', 'node-2', 'node-3', 'node-4']);
  const { epoch } = await cluster.registryRing();
  const leader = cluster.etcdCluster.members[await leaderIndex()]!;

  const killedAt = Date.now();
  await leader.kill();
  let result;
  try {
    result = await runLoad({
      chats,
      ratePerSec: 40,
      durationMs: 6_000,
      maxMessages: 240,
      random: prng(32),
      tag: 'one-down',
    }).done;
    // Asked with one member down: the survivors elected a leader that kept every lease.
    expect(await cluster.registrations()).toEqual(before);
  } finally {
    await leader.start();
  }
  expect(result.failed).toEqual([]);
  acked.push(...result.acked);
  await waitFor(() => expect(deliveryProblems(acked, users)).toEqual([]), 10_000);
  expect((await cluster.registryRing()).epoch).toBe(epoch);
  expect(stateChangesSince(killedAt)).toEqual([]);
  expect(exited).toEqual([]);
  console.log(
    `one etcd member (the leader) killed: ${result.acked.length} messages acked ` +
      `(${crossNode(result.acked)} across nodes), 0 failed, 0 client state changes, same leases`,
  );
});

it('keeps chatting, routing and owning for 30 s without quorum, and refuses ring changes', async () => {
  const ids = users.map((u) => u.id);
  const ringBefore = await cluster.registryRing();
  const routesBefore = await routes([...ids, 'never-seen-1', 'never-seen-2']);
  const ownersBefore = await Promise.all(MEMBERS.map((n) => cluster.ownersAt(n, ids)));
  const [, second, third] = cluster.etcdCluster.members;
  leasesBeforeOutage = await cluster.registrations();

  const lostAt = Date.now();
  await Promise.all([second!.stop(), third!.stop()]);
  const load = runLoad({
    chats,
    ratePerSec: 40,
    durationMs: OUTAGE_MS,
    maxMessages: 1_500,
    random: prng(33),
    tag: 'no-quorum',
  });

  // A ring change needs quorum: chatctl refuses and says why, and writes nothing.
  const refused = await chatctl(['scale-out', 'node-4'], chatctlEnv);
  expect({ code: refused.code, stderr: refused.stderr }).toMatchObject({
    code: 1,
    stderr: expect.stringMatching(/ETCD_NO_QUORUM.*1 of 3.*no leader/s),
  });
  console.log(`chatctl without quorum: ${refused.stderr.trim()}`);

  const during = await load.done;
  const outageMs = Date.now() - lostAt;
  expect(outageMs).toBeGreaterThanOrEqual(OUTAGE_MS);
  expect(during.failed).toEqual([]);
  acked.push(...during.acked);
  await waitFor(() => expect(deliveryProblems(acked, users)).toEqual([]), 10_000);
  // Still without quorum: the registry routes by the last ring it saw, known users and new ones.
  expect(await routes([...ids, 'never-seen-1', 'never-seen-2'])).toEqual(routesBefore);
  expect(await cluster.registryRing()).toEqual(ringBefore);
  // Nodes keep the ring they own by, and their users: no client was closed or moved.
  expect(await Promise.all(MEMBERS.map((n) => cluster.ownersAt(n, ids)))).toEqual(ownersBefore);
  expect(stateChangesSince(lostAt)).toEqual([]);
  expect(exited).toEqual([]);
  console.log(
    `etcd without quorum for ${outageMs} ms: ${during.acked.length} messages acked ` +
      `(${crossNode(during.acked)} across nodes) and delivered, 0 failed, ` +
      `${ids.length + 2} routes unchanged, 0 client state changes`,
  );
});

it('converges once quorum is back: live leases, agreeing routes, ring changes go through', async () => {
  const [, second, third] = cluster.etcdCluster.members;
  const back = Date.now();
  await Promise.all([second!.start(), third!.start()]);
  const quorumAt = Date.now();
  await waitFor(async () => {
    const now = await cluster.registrations();
    // Every node kept the lease it had before the outage: no key ever disappeared.
    expect(now).toEqual(leasesBeforeOutage);
    for (const [node, lease] of Object.entries(now)) {
      const { TTL } = await etcd.leaseClient.leaseTimeToLive({ ID: lease });
      expect({ node, ttl: Number(TTL) > 0 }).toEqual({ node, ttl: true });
    }
    const ring = await cluster.registryRing();
    expect(ring.nodes.map((n) => `${n.id}:${n.live}`)).toEqual([
      'node-1:true',
      'node-2:true',
      'node-3:true',
      'node-4:true',
    ]);
  }, 20_000);
  const registeredMs = Date.now() - quorumAt;
  await waitFor(() => expectAgreement(users.map((u) => u.id)), 10_000);
  const agreedMs = Date.now() - quorumAt;
  expect(stateChangesSince(back)).toEqual([]);

  const { epoch } = await cluster.registryRing();
  const accepted = await chatctl(
    ['scale-out', 'node-4', '--rate', '50', '--wait', '--timeout', '30'],
    chatctlEnv,
  );
  expect({ code: accepted.code, stdout: accepted.stdout }).toEqual({
    code: 0,
    stdout: expect.stringContaining('wrote ring epoch'),
  });
  const changedMs = Date.now() - quorumAt;
  await waitFor(
    async () => expect((await cluster.registryRing()).epoch).toBeGreaterThan(epoch),
    10_000,
  );
  await waitFor(() => expectAgreement(users.map((u) => u.id)), 10_000);
  await waitFor(async () => {
    for (const u of users)
      expect({ user: u.id, ...u.client.state }).toEqual({
        user: u.id,
        status: 'ready',
        node: (await cluster.route(u.id)).node,
      });
  }, 15_000);

  const after = await runLoad({
    chats,
    ratePerSec: 40,
    durationMs: 3_000,
    maxMessages: 120,
    random: prng(34),
    tag: 'after',
  }).done;
  expect(after.failed).toEqual([]);
  acked.push(...after.acked);
  await waitFor(() => expect(deliveryProblems(acked, users)).toEqual([]), 10_000);
  await waitFor(async () => expect(await seqLag(cluster.sql, users)).toEqual([]), 10_000);
  expect(exited).toEqual([]);
  console.log(
    `quorum back: every node under a live lease and seen live by the registry in ${registeredMs} ms, ` +
      `routes agreed in ${agreedMs} ms, ring change (scale-out node-4, drained) done in ${changedMs} ms; ` +
      `${acked.length} messages acked over the whole file, all delivered`,
  );
});
