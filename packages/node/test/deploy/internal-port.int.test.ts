/**
 * What only operators may see is not on the port clients connect to: the public port answers
 * 404 for `/metrics`, `/v1/stats` and `/v1/owners`, the node's internal listener (loopback)
 * serves them, and the node publishes that listener's URL in its etcd record so that the
 * registry's dashboard and chatctl find it.
 */
import { createEtcdClient, parseNodeInfo } from '@chat/cluster';
import { TestCluster } from '@chat/testkit';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 1 });
});
afterAll(async () => {
  await cluster?.close();
});

const INTERNAL_PATHS = ['/metrics', '/v1/stats', '/v1/owners?users=alice'];

test('the public port serves the probes only; the internal listener serves the rest', async () => {
  const node = cluster.node('node-1');
  expect(new URL(node.internalUrl).port).not.toBe(new URL(node.httpUrl).port);
  for (const path of INTERNAL_PATHS) {
    expect({ path, status: (await fetch(`${node.httpUrl}${path}`)).status }).toEqual({
      path,
      status: 404,
    });
    expect({ path, status: (await fetch(`${node.internalUrl}${path}`)).status }).toEqual({
      path,
      status: 200,
    });
  }
  expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
  expect((await fetch(`${node.httpUrl}/readyz`)).status).toBe(200);
  const stats = (await (await fetch(`${node.internalUrl}/v1/stats`)).json()) as object;
  expect(stats).toHaveProperty('connections');
  const owners = (await (await fetch(`${node.internalUrl}/v1/owners?users=alice`)).json()) as {
    owners: Record<string, string>;
  };
  expect(owners.owners['alice']).toBe('node-1');
});

test('the node publishes its internal URL in its etcd record', async () => {
  const etcd = createEtcdClient({ endpoints: cluster.etcd.endpoint });
  try {
    const raw = await etcd.get(`${cluster.prefix}/nodes/node-1`).string();
    expect(parseNodeInfo(JSON.parse(raw ?? 'null')).internalUrl).toBe(
      cluster.node('node-1').internalUrl,
    );
  } finally {
    etcd.close();
  }
});
