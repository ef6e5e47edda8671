/**
 * A cluster whose etcd wants TLS client certificates and a password (as `npm start -- --secure`
 * runs it): the nodes, the registry and chatctl work with the chat user's CHAT_ETCD_* settings,
 * users chat across nodes, and a client without those credentials can neither put a node into
 * the ring nor publish a node record.
 */
import { createEtcdClient, RingConfigStore } from '@chat/cluster';
import type { EtcdSecurity } from '@chat/cluster';
import { jsonCodec } from '@chat/protocol';
import { chatctl, createLocalTls, RawClient, TestCluster } from '@chat/testkit';
import type { LocalTls } from '@chat/testkit';

let tls: LocalTls;
let cluster: TestCluster;
const clients: RawClient[] = [];

beforeAll(async () => {
  tls = await createLocalTls();
  cluster = await TestCluster.start({ nodes: 2, tls, secureEtcd: true });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cluster?.close();
  await tls?.close();
});

async function connect(user: string): Promise<RawClient> {
  const { url } = await cluster.route(user);
  const client = await RawClient.ready({ url, codec: jsonCodec, user, autoAck: true });
  clients.push(client);
  return client;
}

/** Two users whose owners differ. */
async function usersOnBothNodes(): Promise<[string, string]> {
  const byNode = new Map<string, string>();
  for (let i = 0; byNode.size < 2; i++) {
    const user = `se-${i}`;
    byNode.set((await cluster.route(user)).node, user);
  }
  return [...byNode.values()] as [string, string];
}

test('nodes and the registry run on etcd with TLS and auth; users chat across nodes', async () => {
  expect(cluster.etcd.endpoint).toMatch(/^https:\/\//);
  const [a, b] = await usersOnBothNodes();
  const alice = await connect(a);
  const bob = await connect(b);
  const { chatId } = (await alice.ok({ t: 'createChat', members: [b] })) as { chatId: string };
  await alice.ok({ t: 'send', chatId, clientMsgId: 'm1', body: 'over a secured etcd' });
  await bob.next((f) => f.t === 'evt' && f.kind === 'message');

  const status = await chatctl(['status', '--json'], {
    ...cluster.etcdAccess.env,
    CHAT_ETCD_PREFIX: cluster.prefix,
  });
  expect(status.code).toBe(0);
  expect(status.stdout).toContain('node-1');
  const without = await chatctl(['status'], {
    CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint,
    CHAT_ETCD_PREFIX: cluster.prefix,
  });
  // Without the chat user's settings chatctl gets nothing out of etcd.
  expect(without.code).not.toBe(0);
  expect(without.stdout).not.toContain('node-1');
});

test('a client without the password cannot change the ring or register a node', async () => {
  const certificateOnly: EtcdSecurity = { tls: cluster.etcdAccess.security.tls! };
  const intruder = createEtcdClient({
    endpoints: cluster.etcd.endpoint,
    security: certificateOnly,
    callTimeoutMs: 3_000,
    retries: 0,
  });
  try {
    const store = new RingConfigStore({ etcd: intruder, prefix: cluster.prefix });
    await expect(store.readRing()).rejects.toThrow();
    await expect(
      store.casRing(0, { epoch: 99, members: [{ id: 'intruder', weight: 1 }] }),
    ).rejects.toThrow();
    const record = {
      nodeId: 'intruder',
      wsUrl: 'ws://127.0.0.1:9/ws',
      rpcAddress: '127.0.0.1:9',
      weight: 1,
      startedAt: 1,
    };
    await expect(
      intruder.put(`${cluster.prefix}/nodes/intruder`).value(JSON.stringify(record)),
    ).rejects.toThrow();
  } finally {
    intruder.close();
  }
  const ring = (await (await fetch(`${cluster.registryUrl}/v1/ring`)).json()) as {
    nodes: { id: string }[];
  };
  expect(ring.nodes.map((n) => n.id)).toEqual(['node-1', 'node-2']);
});
