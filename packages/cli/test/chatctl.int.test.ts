/**
 * The real chatctl binary against a real cluster (4 nodes, the first 3 members): what it shows
 * matches the cluster, refused changes exit with the right code and write nothing, and of two
 * racing ring changes exactly one wins.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatClient } from '@chat/client';
import { RingConfigStore, createEtcdClient } from '@chat/cluster';
import { TestCluster, testToken, waitFor } from '@chat/testkit';
import { chatctl, startChatctl } from './chatctl-process';

let cluster: TestCluster;
let etcd: ReturnType<typeof createEtcdClient>;
let store: RingConfigStore;
let env: Record<string, string>;
const clients: ChatClient[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 4, members: 3 });
  etcd = createEtcdClient({ endpoints: cluster.etcd.endpoint });
  store = new RingConfigStore({ etcd, prefix: cluster.prefix });
  env = { CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint, CHAT_ETCD_PREFIX: cluster.prefix };
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  etcd?.close();
  await cluster?.close();
});

async function ringRevision(): Promise<{ epoch: number; modRevision: number }> {
  const ring = await store.readRing();
  return { epoch: ring?.config.epoch ?? 0, modRevision: ring?.modRevision ?? 0 };
}

interface StatusJson {
  epoch: number;
  transition: unknown;
  nodes: { id: string; live: boolean; member: boolean; users: number | null }[];
}

test('status --json matches the cluster', async () => {
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
  for (const user of users) {
    const client = new ChatClient({
      registryUrl: cluster.registryUrl,
      user,
      token: () => testToken(user, 'd1'),
    });
    clients.push(client);
  }
  await Promise.all(clients.map((c) => c.connect()));
  const expected = new Map<string, number>();
  for (const user of users) {
    const { node } = await cluster.route(user);
    expected.set(node, (expected.get(node) ?? 0) + 1);
  }

  const { code, stdout, stderr } = await chatctl(['status', '--json'], env);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const status = JSON.parse(stdout) as StatusJson;
  expect(status.epoch).toBe((await ringRevision()).epoch);
  expect(status.transition).toBeNull();
  expect(status.nodes.map((n) => [n.id, n.live, n.member, n.users])).toEqual([
    ['node-1', true, true, expected.get('node-1') ?? 0],
    ['node-2', true, true, expected.get('node-2') ?? 0],
    ['node-3', true, true, expected.get('node-3') ?? 0],
    ['node-4', true, false, 0],
  ]);

  const text = await chatctl(['status'], env);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain(`ring epoch ${status.epoch}: 3 member(s), 3 live`);
  expect(text.stdout).toMatch(/node-4\s+yes\s+no/);
});

test('route <user> agrees with the registry', async () => {
  for (const user of ['alice', 'bob', 'u-1', 'u-2', 'u-3', 'zed']) {
    const answer = await cluster.route(user);
    const { code, stdout } = await chatctl(['route', user, '--json'], env);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      user,
      node: answer.node,
      url: answer.url,
      epoch: answer.epoch,
      transition: null,
    });
  }
});

test('ring --json gives every member a share of the hash space', async () => {
  const { code, stdout } = await chatctl(['ring', '--json'], env);
  expect(code).toBe(0);
  const ring = JSON.parse(stdout) as { members: { id: string; share: number }[] };
  expect(ring.members.map((m) => m.id)).toEqual(['node-1', 'node-2', 'node-3']);
  const total = ring.members.reduce((sum, m) => sum + m.share, 0);
  expect(total).toBeCloseTo(1, 6);
  for (const m of ring.members) expect(m.share).toBeGreaterThan(0.2);
});

test.each([
  [['scale-out', 'node-9'], 5, 'UNKNOWN_NODE'],
  [['scale-out', 'node-1'], 5, 'ALREADY_MEMBER'],
  [['scale-in', 'node-4'], 5, 'NOT_MEMBER'],
  [['scale-in', 'node-9'], 5, 'UNKNOWN_NODE'],
  [['scale-in', 'node-1', 'node-2', 'node-3'], 5, 'LAST_MEMBER'],
  [['drain-rate', '10'], 5, 'NO_TRANSITION'],
  [['scale-out', 'node-4', '--rate', '0'], 2, '--rate must be a positive number'],
  [['scale-out'], 2, 'expected node ids'],
])('chatctl %j is refused with exit %i (%s) and writes nothing', async (args, exit, message) => {
  const before = await ringRevision();
  const { code, stderr, stdout } = await chatctl(args, env);
  expect(stderr).toContain(message);
  expect(stdout).toBe('');
  expect(code).toBe(exit);
  expect(await ringRevision()).toEqual(before);
});

test('scale-out of a node that is shutting down is refused (NOT_ALIVE)', async () => {
  // A registration as a node writes it while it leaves (leaving: true), under a lease of ours.
  const lease = etcd.lease(30);
  await lease.put(`${cluster.prefix}/nodes/node-8`).value(
    JSON.stringify({
      nodeId: 'node-8',
      wsUrl: 'ws://127.0.0.1:9/ws',
      rpcAddress: '127.0.0.1:9',
      weight: 1,
      startedAt: Date.now(),
      leaving: true,
    }),
  );
  try {
    const before = await ringRevision();
    const { code, stderr } = await chatctl(['scale-out', 'node-8'], env);
    expect(stderr).toContain('[NOT_ALIVE]');
    expect(code).toBe(5);
    expect(await ringRevision()).toEqual(before);
  } finally {
    await lease.revoke();
  }
});

test('two racing scale-outs: exactly one wins, the other exits 3 and writes nothing', async () => {
  const before = await ringRevision();
  const gate = join(mkdtempSync(join(tmpdir(), 'chatctl-race-')), 'go');
  const hookEnv = { ...env, CHATCTL_TEST_PAUSE_BEFORE_CAS: gate };
  const a = startChatctl(['scale-out', 'node-4', '--rate', '20'], hookEnv);
  const b = startChatctl(['scale-out', 'node-4', '--rate', '30'], hookEnv);
  // Both have read the ring (same revision) and planned the same change before either writes.
  await waitFor(() => {
    expect(a.stderr()).toContain('paused before the ring write');
    expect(b.stderr()).toContain('paused before the ring write');
  }, 30_000);
  writeFileSync(gate, '');
  const results = await Promise.all([a.done, b.done]);
  const codes = results.map((r) => r.code).sort();
  expect(codes).toEqual([0, 3]);
  const loser = results.find((r) => r.code === 3)!;
  const winner = results.find((r) => r.code === 0)!;
  expect(loser.stderr).toContain('nothing was written');
  expect(loser.stderr).toContain(`Current epoch ${before.epoch + 1}`);
  expect(loser.stdout).toBe('');
  expect(winner.stdout).toContain(`wrote ring epoch ${before.epoch + 1}`);

  const after = await store.readRing();
  expect(after?.config.epoch).toBe(before.epoch + 1);
  expect(after?.config.members.map((m) => m.id)).toEqual(['node-1', 'node-2', 'node-3', 'node-4']);
  expect(after?.config.transition?.fromEpoch).toBe(before.epoch);
  const winnerRate = winner === results[0] ? 20 : 30;
  expect(after?.config.transition?.ratePerSec).toBe(winnerRate);
});
