/**
 * Behind the TLS edge (CHAT_EDGE_URL) a node's `moved` frame names the new owner's route through
 * the edge, like the registry does, not the owner's own plaintext URL.
 */
import type { ClusterSnapshot, NodeInfo } from '@chat/cluster';
import { clusterConfigFromEnv } from '../../src/cluster/cluster-config';
import { RingOwnership } from '../../src/cluster/ring-ownership';

const ids = ['node-1', 'node-2'];
const snapshot: ClusterSnapshot = {
  nodes: new Map<string, NodeInfo>(
    ids.map((id) => [
      id,
      {
        nodeId: id,
        wsUrl: `ws://${id}:7001/ws`,
        rpcAddress: `${id}:7101`,
        weight: 1,
        startedAt: 0,
      },
    ]),
  ),
  ring: { config: { epoch: 1, members: ids.map((id) => ({ id, weight: 1 })) }, modRevision: 1 },
  drains: new Map(),
  revision: 1,
};

/** A user node-1 would redirect, and the frame it sends. */
function redirectOfSomeUser(edgeOrigin?: string) {
  const own = new RingOwnership('node-1', { now: () => 0 }, 30_000, edgeOrigin);
  own.update(snapshot);
  const user = Array.from({ length: 100 }, (_, i) => `u-${i}`).find(
    (u) => own.ownerOf(u) === 'node-2',
  )!;
  return own.redirectFor(user);
}

it("names the owner's own URL without an edge", () => {
  expect(redirectOfSomeUser()).toMatchObject({ node: 'node-2', url: 'ws://node-2:7001/ws' });
});

it("names the owner's route through the edge with one", () => {
  expect(redirectOfSomeUser('https://chat.example.com')).toEqual({
    t: 'moved',
    node: 'node-2',
    url: 'wss://chat.example.com/n/node-2/ws',
    epoch: 1,
  });
});

it('reads CHAT_EDGE_URL, refusing anything but an https origin', () => {
  const env = { CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };
  expect(
    clusterConfigFromEnv({ ...env, CHAT_EDGE_URL: 'https://127.0.0.1:8443' }, '127.0.0.1')?.config
      .edgeOrigin,
  ).toBe('https://127.0.0.1:8443');
  expect(() =>
    clusterConfigFromEnv({ ...env, CHAT_EDGE_URL: 'https://edge/path' }, '127.0.0.1'),
  ).toThrow("CHAT_EDGE_URL must be the edge's origin only");
});
