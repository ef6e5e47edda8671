import { backoffCeiling, backoffDelay } from '@chat/protocol';
import { ETCD_RETRY, etcdRetryDelay } from '../src/backoff';
import {
  nodeStatsUrl,
  clusterKeys,
  decodeJson,
  InvalidClusterData,
  liveMembers,
  parseNodeInfo,
  parseRingConfig,
} from '../src/model';

const node = { nodeId: 'n-1', wsUrl: 'ws://h:1/ws', rpcAddress: 'h:2', weight: 1, startedAt: 5 };

describe('clusterKeys', () => {
  test('lays keys out under the prefix, with or without a trailing slash', () => {
    for (const prefix of ['/chat', '/chat/', '/chat//']) {
      const keys = clusterKeys(prefix);
      expect(keys.root).toBe('/chat/');
      expect(keys.node('n-1')).toBe('/chat/nodes/n-1');
      expect(keys.ring).toBe('/chat/ring');
      expect(keys.drain('n-1')).toBe('/chat/drain/n-1');
    }
  });
  test('refuses an empty prefix', () => {
    expect(() => clusterKeys('/')).toThrow(RangeError);
  });
});

describe('parseNodeInfo', () => {
  test('keeps exactly the known fields', () => {
    expect(parseNodeInfo({ ...node, extra: true })).toEqual(node);
  });
  test.each([
    ['nodeId', 'has space'],
    ['wsUrl', ''],
    ['weight', 0],
    ['weight', Number.NaN],
    ['startedAt', -1],
  ])('rejects a bad %s', (field, value) => {
    expect(() => parseNodeInfo({ ...node, [field]: value })).toThrow(InvalidClusterData);
  });
  test.each([
    ['javascript:alert(document.cookie)', 'scheme javascript:'],
    ['file:///etc/passwd', 'scheme file:'],
    ['https://h:1/ws', 'scheme https:'],
    ['ftp://h/ws', 'scheme ftp:'],
    ['ws://user:pw@h:1/ws', 'credentials'],
    ['ws://user@h:1/ws', 'credentials'],
    ['ws://h:1/ws#x', 'fragment'],
    ['not a url', 'not a URL'],
  ])('refuses the client URL %s', (wsUrl, problem) => {
    expect(() => parseNodeInfo({ ...node, wsUrl })).toThrow(problem);
  });
  test.each(['h', 'h:0', 'h:70000', 'ws://h:1', 'h:1/x', 'a b:1', ':1'])(
    'refuses the RPC address %s',
    (rpcAddress) => {
      expect(() => parseNodeInfo({ ...node, rpcAddress })).toThrow('node.rpcAddress');
    },
  );
  test('keeps a valid internal URL and refuses a hostile one', () => {
    const internalUrl = 'http://10.0.0.5:9101';
    expect(parseNodeInfo({ ...node, internalUrl })).toEqual({ ...node, internalUrl });
    for (const bad of ['javascript:alert(1)', 'ws://h:1', 'http://u:p@h:1', '']) {
      expect(() => parseNodeInfo({ ...node, internalUrl: bad })).toThrow('node.internalUrl');
    }
  });
  test('accepts wss, IPv6 and host names', () => {
    for (const [wsUrl, rpcAddress] of [
      ['wss://chat.example.com/n/node-1/ws', 'node-1.chat.svc:7001'],
      ['ws://[::1]:7000/ws', '[::1]:7001'],
    ] as const) {
      expect(parseNodeInfo({ ...node, wsUrl, rpcAddress })).toMatchObject({ wsUrl, rpcAddress });
    }
  });
});

describe('parseRingConfig', () => {
  test('accepts a ring with a transition', () => {
    const ring = {
      epoch: 3,
      members: [{ id: 'a', weight: 1 }],
      transition: { fromEpoch: 2, fromMembers: [{ id: 'b', weight: 2 }], startedAt: 9 },
    };
    expect(parseRingConfig(ring)).toEqual(ring);
  });
  test('rejects duplicate members, bad weights and non-objects', () => {
    expect(() =>
      parseRingConfig({
        epoch: 1,
        members: [
          { id: 'a', weight: 1 },
          { id: 'a', weight: 1 },
        ],
      }),
    ).toThrow('duplicate');
    expect(() => parseRingConfig({ epoch: 1, members: [{ id: 'a', weight: -1 }] })).toThrow(
      InvalidClusterData,
    );
    expect(() => parseRingConfig([])).toThrow(InvalidClusterData);
    expect(() => decodeJson('{', parseRingConfig)).toThrow('not JSON');
  });
});

test('liveMembers keeps configured members that are registered, in ring order', () => {
  const ring = parseRingConfig({
    epoch: 1,
    members: [
      { id: 'c', weight: 1 },
      { id: 'a', weight: 2 },
      { id: 'b', weight: 1 },
    ],
  });
  const nodes = new Map([
    ['a', { ...node, nodeId: 'a' }],
    ['c', { ...node, nodeId: 'c' }],
    ['z', { ...node, nodeId: 'z' }],
  ]);
  expect(liveMembers(ring, nodes)).toEqual([
    { id: 'c', weight: 1 },
    { id: 'a', weight: 2 },
  ]);
  expect(liveMembers(undefined, nodes)).toEqual([]);
});

test('etcd retries back off exponentially with equal jitter: never under half the ceiling', () => {
  expect(ETCD_RETRY.jitter).toBe('equal');
  expect(backoffDelay(0, ETCD_RETRY, () => 0)).toBe(50);
  expect(backoffDelay(0, ETCD_RETRY, () => 0.9999)).toBe(99);
  expect(backoffDelay(3, ETCD_RETRY, () => 0)).toBe(400);
  expect(backoffDelay(50, ETCD_RETRY, () => 0.9999)).toBe(1_999);
  expect(backoffDelay(50, { ...ETCD_RETRY, maxMs: 500 }, () => 0)).toBe(250);
  for (let attempt = 0; attempt < 8; attempt++) {
    const delay = etcdRetryDelay(attempt);
    const ceiling = backoffCeiling(attempt, ETCD_RETRY);
    expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
    expect(delay).toBeLessThanOrEqual(ceiling);
  }
});

test('nodeStatsUrl: the stats route on the internal listener, none without one', () => {
  expect(nodeStatsUrl({ internalUrl: 'http://10.0.0.5:9101' })).toBe(
    'http://10.0.0.5:9101/v1/stats',
  );
  expect(nodeStatsUrl({ internalUrl: 'https://ops.example/x?y=1' })).toBe(
    'https://ops.example/v1/stats',
  );
  expect(nodeStatsUrl({})).toBeUndefined();
});
