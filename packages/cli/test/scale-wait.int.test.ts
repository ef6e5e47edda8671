/**
 * `chatctl scale-out node-4 --wait` on a real cluster with connected users: it writes the ring,
 * follows the nodes' drain progress and exits 0 with a summary once every node reports done.
 * Needs nodes that publish DrainProgress (P/drain/<nodeId>).
 */
import { ChatClient } from '@chat/client';
import { RingConfigStore, createEtcdClient } from '@chat/cluster';
import { TestCluster, chatctl, testToken } from '@chat/testkit';

let cluster: TestCluster;
let etcd: ReturnType<typeof createEtcdClient>;
const clients: ChatClient[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 4, members: 3 });
  etcd = createEtcdClient({ endpoints: cluster.etcd.endpoint });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  etcd?.close();
  await cluster?.close();
});

test('scale-out node-4 --wait follows the drain to done', async () => {
  for (let i = 0; i < 60; i++) {
    const user = `user-${i}`;
    clients.push(
      new ChatClient({
        registryUrl: cluster.registryUrl,
        user,
        token: () => testToken(user, 'd1'),
        backoffBaseMs: 50,
        backoffMaxMs: 500,
      }),
    );
  }
  await Promise.all(clients.map((c) => c.connect()));
  const store = new RingConfigStore({ etcd, prefix: cluster.prefix });
  const before = (await store.readRing())!.config.epoch;

  const { code, stdout, stderr } = await chatctl(
    ['scale-out', 'node-4', '--rate', '50', '--wait', '--timeout', '60'],
    { CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint, CHAT_ETCD_PREFIX: cluster.prefix },
  );
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) as string });
  expect(stdout).toContain(`wrote ring epoch ${before + 1} (was ${before}) +node-4`);
  // Everyone who moves goes to node-4; the summary counts exactly them.
  const owners = await Promise.all(clients.map((_, i) => cluster.route(`user-${i}`)));
  const movers = owners.filter((o) => o.node === 'node-4').length;
  expect(movers).toBeGreaterThan(0);
  expect(stdout).toMatch(new RegExp(`drain complete at epoch \\d+: ${movers} user\\(s\\) moved`));
  expect(stdout).toContain('peak reconnect rate per node');
  // Not a TTY: one progress line per second on stderr, no cursor control.
  expect(stderr).not.toContain('\x1b[');
});
