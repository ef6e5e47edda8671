/**
 * Behind the TLS edge (CHAT_EDGE_URL) the registry routes clients to `wss://<edge>/n/<node>/ws`
 * instead of the node's own plaintext URL; a misconfigured edge URL stops the registry.
 */
import type { ClusterSnapshot, NodeInfo } from '@chat/cluster';
import { RouteTable } from '@chat/cluster';
import { registryConfigFromEnv } from '../src/config';
import { routeAnswer } from '../src/routes';

const node: NodeInfo = {
  nodeId: 'node-1',
  wsUrl: 'ws://10.0.0.5:7001/ws',
  rpcAddress: '10.0.0.5:7101',
  weight: 1,
  startedAt: 0,
};
const snapshot: ClusterSnapshot = {
  nodes: new Map([[node.nodeId, node]]),
  ring: { config: { epoch: 1, members: [{ id: 'node-1', weight: 1 }] }, modRevision: 1 },
  drains: new Map(),
  revision: 1,
};
const table = RouteTable.from(snapshot);

it("routes to the node's own URL without an edge", () => {
  expect(routeAnswer(table, 'alice').body).toMatchObject({ url: 'ws://10.0.0.5:7001/ws' });
});

it('routes through the edge over wss with one', () => {
  expect(routeAnswer(table, 'alice', 'https://chat.example.com').body).toEqual({
    user: 'alice',
    node: 'node-1',
    url: 'wss://chat.example.com/n/node-1/ws',
    epoch: 1,
  });
});

describe('CHAT_EDGE_URL', () => {
  const base = { CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };

  it('is read as the normalized origin', () => {
    expect(
      registryConfigFromEnv({ ...base, CHAT_EDGE_URL: 'https://chat.example.com/' }).edgeOrigin,
    ).toBe('https://chat.example.com');
    expect(registryConfigFromEnv(base).edgeOrigin).toBeUndefined();
  });

  it('refuses a plaintext URL', () => {
    expect(() =>
      registryConfigFromEnv({ ...base, CHAT_EDGE_URL: 'http://chat.example.com' }),
    ).toThrow('CHAT_EDGE_URL must be an https:// URL');
  });
});
