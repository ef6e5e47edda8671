import type { Etcd3 } from 'etcd3';
import { register } from '../src';
import type { Registered } from '../src';
import type { ChatError } from '@chat/protocol';
import { client, nodeInfo, RecordingLogger, startEtcd, startEtcdProxy, waitFor } from './helpers';
import type { EtcdHandle } from './helpers';

const PREFIX = '/t-reg';
let etcd: EtcdHandle;
let observer: Etcd3;
const opened: Etcd3[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  observer = client(etcd.endpoint, opened);
}, 30_000);

afterAll(async () => {
  for (const c of opened) c.close();
  await etcd?.close();
}, 30_000);

async function nodeKey(nodeId: string): Promise<{ value: string; lease: string } | undefined> {
  const res = await observer.get(`${PREFIX}/nodes/${nodeId}`).exec();
  const kv = res.kvs[0];
  return kv && { value: kv.value.toString(), lease: kv.lease };
}

test('the node key disappears once its lease expires without keepalives, and comes back under a new lease', async () => {
  // The registering client talks through a proxy so that its keepalives can be cut off for
  // real (closing an etcd3 client leaves already-open keepalive streams running).
  const proxy = await startEtcdProxy(etcd.endpoint);
  const reg = await register({
    etcd: client(proxy.endpoint, opened),
    prefix: PREFIX,
    node: nodeInfo('a'),
    ttlSec: 2,
  });
  const registered: Registered[] = [];
  const lost: ChatError[] = [];
  reg.onRegistered((event) => registered.push(event));
  reg.onLost((err) => lost.push(err));
  const stored = await nodeKey('a');
  expect(stored && JSON.parse(stored.value)).toEqual(nodeInfo('a'));
  expect(reg.isRegistered).toBe(true);

  // The node "dies": no revoke, no more keepalives.
  const died = Date.now();
  proxy.cut();
  await waitFor(async () => expect(await nodeKey('a')).toBeUndefined(), 10_000, 100);
  const elapsed = Date.now() - died;
  expect(elapsed).toBeGreaterThan(500); // it was the lease, not a delete
  expect(elapsed).toBeLessThan(5_000);

  // Back in touch, etcd says the lease is gone: the node hears it and registers again.
  proxy.restore();
  await waitFor(() => expect(registered).toHaveLength(1), 10_000, 50);
  expect(lost.map((e) => e.code)).toEqual(['UNAVAILABLE']);
  expect(registered[0]?.generation).toBe(2);
  expect((await nodeKey('a'))?.lease).toBe(registered[0]?.leaseId);
  expect(registered[0]?.leaseId).not.toBe(stored?.lease);
  await reg.close();
  await proxy.close();
}, 30_000);

test('close() revokes the lease: the key is gone at once', async () => {
  const reg = await register({
    etcd: client(etcd.endpoint, opened),
    prefix: PREFIX,
    node: nodeInfo('b'),
    ttlSec: 10,
  });
  expect(await nodeKey('b')).toBeDefined();
  await reg.close();
  expect(await nodeKey('b')).toBeUndefined();
}, 30_000);

test('rejects a node with an invalid id', async () => {
  await expect(
    register({ etcd: observer, prefix: PREFIX, node: { ...nodeInfo('x'), nodeId: 'no spaces' } }),
  ).rejects.toThrow('nodeId');
}, 30_000);

// Last in the file: it stops and restarts etcd.
test('keeps its lease through an etcd outage longer than the TTL: etcd extends it on return', async () => {
  const logger = new RecordingLogger();
  const reg = await register({
    etcd: client(etcd.endpoint, opened),
    prefix: PREFIX,
    node: nodeInfo('c'),
    ttlSec: 2,
    logger,
  });
  const registered: Registered[] = [];
  const lost: ChatError[] = [];
  reg.onRegistered((event) => registered.push(event));
  reg.onLost((err) => lost.push(err));
  const first = await nodeKey('c');
  expect(first).toBeDefined();

  await etcd.stop();
  await waitFor(() => expect(logger.has('etcd does not answer keepalives')).toBe(true), 5_000);
  // Progress published while etcd is away is written once it is back, with no second call.
  reg.publishUnderLease(`${PREFIX}/drain/c`, 'stale');
  reg.publishUnderLease(`${PREFIX}/drain/c`, 'latest');
  // The fault lasts three TTLs (a duration, not a wait for something): etcd said nothing, so
  // nothing is lost.
  await new Promise((resolve) => setTimeout(resolve, 3 * 2_000));
  expect(reg.isRegistered).toBe(true);

  await etcd.start();
  await waitFor(() => expect(logger.has('etcd renews the lease again')).toBe(true), 10_000);
  // etcd took the old lease's keepalive: the key is still there, under that lease.
  expect(await nodeKey('c')).toEqual(first);
  const { TTL } = await observer.leaseClient.leaseTimeToLive({ ID: first!.lease });
  expect(Number(TTL)).toBeGreaterThan(0);
  await waitFor(async () => {
    const { kvs } = await observer.get(`${PREFIX}/drain/c`).exec();
    expect(kvs.map((kv) => [kv.value.toString(), kv.lease])).toEqual([['latest', first!.lease]]);
  }, 10_000);
  expect(lost).toEqual([]);
  expect(registered).toEqual([]);

  await reg.close();
  expect(await nodeKey('c')).toBeUndefined();
}, 30_000);
