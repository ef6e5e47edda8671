/**
 * etcd is the source of membership, not a dependency of chat: while it is down (15 s here,
 * several lease TTLs) nodes keep chatting over the last ring they saw, sends and cross-node
 * deliveries keep working, nothing crashes, and when etcd returns every node is still registered
 * under the lease it had (etcd extends leases on its return; the node never gave it up).
 * And a node cut off from etcd alone (a proxy between them) while the membership changes and
 * etcd compacts the history it would resume its watch from converges on the current ring once
 * the link is back.
 */
import { createEtcdClient } from '@chat/cluster';
import {
  TestCluster,
  createChats,
  deliveryProblems,
  expectAgreement,
  expectOnOwners,
  prng,
  recordExits,
  runLoad,
  sdkUser,
  seqLag,
  startEtcdProxy,
  waitFor,
} from '@chat/testkit';
import type { EtcdProxy, SdkUser } from '@chat/testkit';

const LEASE_TTL_SEC = 3;
const OUTAGE_MS = 15_000;

let cluster: TestCluster;
let etcd: ReturnType<typeof createEtcdClient>;
let proxy: EtcdProxy | undefined;
const users: SdkUser[] = [];
const exited: string[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 3,
    leaseTtlSec: LEASE_TTL_SEC,
    nodeEnv: { CHAT_HEARTBEAT_MS: '1000', CHAT_HEARTBEAT_TIMEOUT_MS: '1000' },
  });
  etcd = createEtcdClient({ endpoints: cluster.etcd.endpoint });
  recordExits(cluster, exited);
});
afterAll(async () => {
  await Promise.all(users.map((u) => u.client.close()));
  etcd?.close();
  await cluster?.close();
  await proxy?.close();
});

it('keeps chatting over the last ring while etcd is down, and re-registers every node when it is back', async () => {
  users.push(...Array.from({ length: 30 }, (_, i) => sdkUser(cluster.registryUrl, `eo-${i}`)));
  await Promise.all(users.map((u) => u.client.connect()));
  await expectOnOwners(cluster, users);
  const chats = await createChats(users, { pairs: 15, groups: 4, groupSize: 5 }, prng(21));
  const before = await cluster.registrations();
  expect(Object.keys(before).sort()).toEqual(['node-1', 'node-2', 'node-3']);
  const epoch = (await cluster.registryRing()).epoch;

  const stoppedAt = Date.now();
  await cluster.etcd.stop();
  // A user who was not connected before the outage can still be routed and chat.
  const late = sdkUser(cluster.registryUrl, 'eo-late');
  users.push(late);
  await late.client.connect();
  const peer = users.find((u) => u.client.state.node !== late.client.state.node)!;
  const lateChat = {
    chatId: (await late.client.createChat([peer.id])).chatId,
    members: [late, peer],
  };
  const load = runLoad({
    chats: [...chats, lateChat],
    ratePerSec: 60,
    // Runs until the outage is OUTAGE_MS old; the checks below still happen with etcd down.
    durationMs: OUTAGE_MS - (Date.now() - stoppedAt),
    maxMessages: 1_000,
    random: prng(22),
    tag: 'outage',
  });
  const during = await load.done;
  expect(during.failed).toEqual([]);
  const crossNode = during.acked.filter((s) =>
    s.chat.members.some((m) => m.client.state.node !== s.sender.client.state.node),
  );
  expect(crossNode.length).toBeGreaterThan(100);
  expect(during.acked.some((s) => s.chat === lateChat)).toBe(true);
  // Every acked message reached every member while etcd was still down.
  await waitFor(() => expect(deliveryProblems(during.acked, users)).toEqual([]), 10_000);
  expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(OUTAGE_MS);
  expect(exited).toEqual([]);
  console.log(
    `etcd outage: down ${Date.now() - stoppedAt} ms, ${during.acked.length} messages acked (${crossNode.length} across nodes) and delivered meanwhile`,
  );

  await cluster.etcd.start();
  const startedAt = Date.now();
  // Every node is still registered under the lease it had before the outage (etcd extends every
  // lease when it comes back, and the node kept renewing it), and the registry sees it live.
  await waitFor(async () => {
    const now = await cluster.registrations();
    expect(Object.keys(now).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    for (const [node, lease] of Object.entries(now)) {
      expect({ node, lease }).toEqual({ node, lease: before[node] });
      const ttl = await etcd.leaseClient.leaseTimeToLive({ ID: lease });
      expect(Number(ttl.TTL)).toBeGreaterThan(0);
    }
    const r = await cluster.registryRing();
    expect(r.epoch).toBe(epoch);
    expect(r.nodes.map((n) => `${n.id}:${n.live}:${n.member}`)).toEqual([
      'node-1:true:true',
      'node-2:true:true',
      'node-3:true:true',
    ]);
  }, 20_000);
  console.log(
    `etcd back: all nodes live under their old leases within ${Date.now() - startedAt} ms`,
  );
  await waitFor(
    () =>
      expectAgreement(
        cluster,
        users.map((u) => u.id),
      ),
    10_000,
  );

  const after = await runLoad({
    chats: [...chats, lateChat],
    ratePerSec: 60,
    durationMs: 3_000,
    maxMessages: 180,
    random: prng(23),
    tag: 'after',
  }).done;
  expect(after.failed).toEqual([]);
  await waitFor(() => expectOnOwners(cluster, users), 10_000);
  await waitFor(
    () => expect(deliveryProblems([...during.acked, ...after.acked], users)).toEqual([]),
    10_000,
  );
  await waitFor(async () => expect(await seqLag(cluster.sql, users)).toEqual([]), 10_000);
  expect(exited).toEqual([]);
});

it('brings a node cut off from etcd back onto the current ring after membership changes and a compaction', async () => {
  proxy = await startEtcdProxy(cluster.etcd.endpoint);
  // A lease longer than the cut: the node stays registered, only its view goes stale.
  const cutNode = await cluster.startNode('node-4', {
    CHAT_ETCD_ENDPOINTS: proxy.endpoint,
    CHAT_LEASE_TTL_SEC: '30',
  });
  void cutNode.exited.then((code) => exited.push(`node-4 exited (${code})`));
  const ids = Array.from({ length: 300 }, (_, i) => `cut-${i}`);
  const e1 = await cluster.setMembers(['node-1', 'node-2', 'node-3', 'node-4']);
  await waitFor(async () => {
    expect((await cluster.registryRing()).epoch).toBe(e1);
    await expectAgreement(cluster, ids);
  }, 15_000);

  proxy.cut();
  await cluster.setMembers(['node-1', 'node-3', 'node-4'], { 'node-4': 2 });
  const e3 = await cluster.setMembers(['node-1', 'node-2', 'node-4'], { 'node-4': 3 });
  const { header } = await etcd.get('compaction-marker').exec();
  await etcd.kv.compact({ revision: header.revision, physical: true });
  await waitFor(async () => expect((await cluster.registryRing()).epoch).toBe(e3), 10_000);
  // Cut off, node-4 still routes by the ring it saw last.
  expect((await cluster.ownersAt('node-4', ids)).epoch).toBe(e1);
  expect((await cluster.registryRing()).nodes.find((n) => n.id === 'node-4')).toMatchObject({
    live: true,
  });

  const restoredAt = Date.now();
  proxy.restore();
  await waitFor(
    () => expect(cluster.ownersAt('node-4', ['x'])).resolves.toMatchObject({ epoch: e3 }),
    20_000,
  );
  console.log(
    `cut node converged on epoch ${e3} ${Date.now() - restoredAt} ms after the link came back`,
  );
  await waitFor(() => expectAgreement(cluster, ids), 10_000);
  const owners = new Set(Object.values((await cluster.ownersAt('node-4', ids)).owners));
  expect([...owners].sort()).toEqual(['node-1', 'node-2', 'node-4']);
  expect(exited).toEqual([]);
});
