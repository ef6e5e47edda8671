/**
 * The real chatctl binary against a real cluster (4 nodes, the first 3 members): what it shows
 * matches the cluster, refused changes exit with the right code and write nothing, a dry run
 * writes nothing, of two racing ring changes exactly one wins, and `--wait --json` ends with one
 * JSON document.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatClient } from '@chat/client';
import { RingConfigStore, clusterKeys, createEtcdClient } from '@chat/cluster';
import { buildRing, ringShares } from '@chat/ring';
import { TestCluster, chatctl, startChatctl, testToken, waitFor } from '@chat/testkit';
import type { StatusReport } from '../src';

let cluster: TestCluster;
let etcd: ReturnType<typeof createEtcdClient>;
let store: RingConfigStore;
let env: Record<string, string>;
const clients: ChatClient[] = [];

beforeAll(async () => {
  // The cluster never closes a transition here: the ring changes only when a test changes it
  // (a closing write of the cluster's own would race the next test's compare-and-swap).
  cluster = await TestCluster.start({
    nodes: 4,
    members: 3,
    nodeEnv: { CHAT_TRANSITION_GRACE_MS: '3600000' },
  });
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

/** Registers `nodeId` as a node would, under a lease of ours (revoke it to unregister). */
async function registerNode(
  nodeId: string,
  extra: { leaving?: boolean } = {},
): Promise<ReturnType<typeof etcd.lease>> {
  const lease = etcd.lease(30);
  await lease.put(`${cluster.prefix}/nodes/${nodeId}`).value(
    JSON.stringify({
      nodeId,
      wsUrl: 'ws://127.0.0.1:9/ws',
      rpcAddress: '127.0.0.1:9',
      weight: 1,
      startedAt: Date.now(),
      ...extra,
    }),
  );
  return lease;
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
  const status = JSON.parse(stdout) as StatusReport;
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
  // A registration as a node writes it while it leaves (leaving: true).
  const lease = await registerNode('node-8', { leaving: true });
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

interface DryRunJson {
  dryRun: boolean;
  written: boolean;
  previousEpoch: number;
  expectedModRevision: number;
  ring: { epoch: number; members: { id: string }[]; transition?: { fromEpoch: number } };
  moves: {
    moves: { from: string; to: string; hashShare: number; users: number | null }[];
    hashShare: number;
    users: number | null;
    connectedUsers: number | null;
  };
}

test('--dry-run shows the ring and who would move, and leaves the ring key as it is', async () => {
  const before = await ringRevision();
  const out = await chatctl(['scale-out', 'node-4', '--rate', '20', '--dry-run', '--json'], env);
  expect(out.code).toBe(0);
  const plan = JSON.parse(out.stdout) as DryRunJson;
  expect(plan).toMatchObject({
    dryRun: true,
    written: false,
    previousEpoch: before.epoch,
    expectedModRevision: before.modRevision,
    ring: { epoch: before.epoch + 1, transition: { fromEpoch: before.epoch, ratePerSec: 20 } },
  });
  expect(plan.ring.members.map((m) => m.id)).toEqual(['node-1', 'node-2', 'node-3', 'node-4']);
  // The six users of the first test, each on its owner (GET /v1/stats); all movers go to node-4.
  expect(plan.moves.connectedUsers).toBe(6);
  expect(plan.moves.moves.map((m) => m.to)).toEqual(['node-4', 'node-4', 'node-4']);

  // Removing node-3 moves exactly node-3's part of the hash space, as the ring code computes it.
  const members = (await store.readRing())!.config.members;
  const share = ringShares(buildRing(members)).find((m) => m.id === 'node-3')!.share;
  const scaleIn = await chatctl(['scale-in', 'node-3', '--dry-run', '--json'], env);
  const removal = JSON.parse(scaleIn.stdout) as DryRunJson;
  expect(removal.moves.moves.every((m) => m.from === 'node-3')).toBe(true);
  expect(removal.moves.hashShare).toBeCloseTo(share, 9);

  // A refused dry run is a JSON error with the validation reason, like a refused write.
  const refused = await chatctl(['scale-out', 'node-9', '--dry-run', '--json'], env);
  expect(refused.code).toBe(5);
  expect(JSON.parse(refused.stdout)).toEqual({
    error: { code: 'UNKNOWN_NODE', exitCode: 5, message: expect.stringContaining('node-9') },
  });
  expect(await ringRevision()).toEqual(before);
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

test('--wait --timeout --json: a drain that cannot finish ends in one document with TIMEOUT', async () => {
  // A registered node that never publishes drain progress: the wait cannot end before the timeout.
  const lease = await registerNode('node-7');
  try {
    const before = await ringRevision();
    const { code, stdout } = await chatctl(
      ['drain-rate', '50', '--wait', '--timeout', '2', '--json'],
      env,
    );
    expect(code).toBe(4);
    const doc = JSON.parse(stdout) as {
      written: boolean;
      ring: { epoch: number };
      drain: { done: boolean; status: { nodes: { id: string; state: string }[] } };
      error: { code: string; exitCode: number; message: string };
    };
    expect(doc).toMatchObject({
      written: true,
      ring: { epoch: before.epoch + 1 },
      drain: { done: false },
      error: { code: 'TIMEOUT', exitCode: 4 },
    });
    expect(doc.error.message).toContain('node-7 (no progress for epoch');
    expect(doc.drain.status.nodes).toContainEqual({ id: 'node-7', state: 'waiting' });
  } finally {
    await lease.revoke();
  }
});

test('scale-in --wait --json: one JSON document with the written ring and the drain summary', async () => {
  const before = await ringRevision();
  const { code, stdout, stderr } = await chatctl(
    ['scale-in', 'node-4', '--wait', '--timeout', '60', '--json'],
    env,
  );
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.stringContaining('users moved') });
  const lines = stdout.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  const doc = JSON.parse(lines[0]!) as {
    written: boolean;
    removed: string[];
    ring: { epoch: number; members: { id: string }[] };
    drain: { done: boolean; epoch: number; usersMoved: number; durationMs: number };
  };
  expect(doc).toMatchObject({
    written: true,
    removed: ['node-4'],
    ring: { epoch: before.epoch + 1 },
  });
  expect(doc.ring.members.map((m) => m.id)).toEqual(['node-1', 'node-2', 'node-3']);
  expect(doc.drain.done).toBe(true);
  expect(doc.drain.epoch).toBeGreaterThanOrEqual(before.epoch + 1);
  // The summary counts what the nodes published as moved for this epoch.
  const published = await etcd.getAll().prefix(clusterKeys(cluster.prefix).drainPrefix).strings();
  const moved = Object.values(published)
    .map((raw) => JSON.parse(raw) as { epoch: number; moved: number })
    .filter((d) => d.epoch >= before.epoch + 1)
    .reduce((sum, d) => sum + d.moved, 0);
  expect(doc.drain.usersMoved).toBe(moved);
  expect((await ringRevision()).epoch).toBeGreaterThanOrEqual(before.epoch + 1);
});
