import type { Etcd3 } from 'etcd3';
import { register, RingConfigStore, watchCluster } from '../src';
import type { ClusterChange, ClusterSnapshot, ClusterView } from '../src';
import { client, nodeInfo, RecordingLogger, startEtcd, startEtcdProxy, waitFor } from './helpers';
import type { EtcdHandle } from './helpers';

let etcd: EtcdHandle;
let writer: Etcd3;
const opened: Etcd3[] = [];
const views: ClusterView[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  writer = client(etcd.endpoint, opened);
});

afterAll(async () => {
  for (const view of views) await view.close();
  for (const c of opened) c.close();
  await etcd?.close();
});

function summary(snapshot: ClusterSnapshot): string {
  const nodes = [...snapshot.nodes.keys()].sort().join(',');
  const drains = [...snapshot.drains.values()]
    .map((d) => `${d.nodeId}:${d.moved}/${d.total}`)
    .join(',');
  return `nodes=${nodes} ring=${snapshot.ring?.config.epoch ?? '-'}${drains ? ` drains=${drains}` : ''}`;
}

test('sees joins, leaves and ring writes in revision order', async () => {
  const prefix = '/t-order';
  const view = watchCluster({ etcd: client(etcd.endpoint, opened), prefix });
  views.push(view);
  const changes: ClusterChange[] = [];
  view.onChange((change) => changes.push(change));
  const initial = await view.ready();
  expect(initial.nodes.size).toBe(0);
  expect(initial.ring).toBeUndefined();

  const store = new RingConfigStore({ etcd: writer, prefix });
  const a = await register({ etcd: writer, prefix, node: nodeInfo('a'), ttlSec: 5 });
  const b = await register({ etcd: writer, prefix, node: nodeInfo('b', 2), ttlSec: 5 });
  const first = await store.casRing(0, { epoch: 1, members: [{ id: 'a', weight: 1 }] });
  expect(first.ok).toBe(true);
  const second = await store.casRing(first.ok ? first.revision : -1, {
    epoch: 2,
    members: [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 2 },
      { id: 'c', weight: 1 },
    ],
  });
  expect(second.ok).toBe(true);
  await a.close();
  // Drain progress is part of the snapshot; an invalid record is ignored.
  const drain = {
    nodeId: 'b',
    epoch: 2,
    total: 4,
    moved: 1,
    remaining: 3,
    ratePerSec: 10,
    peakPerSec: 1,
    done: false,
    startedAt: 1,
    updatedAt: 2,
  };
  await writer.put(`${prefix}/drain/b`).value(JSON.stringify(drain));
  await writer.put(`${prefix}/drain/x`).value('{}');
  const last = await writer.put(`${prefix}/nodes/z`).value('not json');

  await waitFor(() => expect(view.snapshot.revision).toBe(Number(last.header.revision)));
  expect(changes.map((change) => `${change.reason} ${summary(change.snapshot)}`)).toEqual([
    'initial nodes= ring=-',
    'watch nodes=a ring=-',
    'watch nodes=a,b ring=-',
    'watch nodes=a,b ring=1',
    'watch nodes=a,b ring=2',
    'watch nodes=b ring=2',
    'watch nodes=b ring=2 drains=b:1/4',
    'watch nodes=b ring=2 drains=b:1/4', // the invalid drain record of x is ignored (and logged)
    'watch nodes=b ring=2 drains=b:1/4', // the invalid registration of z is ignored (and logged)
  ]);
  const revisions = changes.map((change) => change.snapshot.revision);
  expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
  expect(changes[2]?.snapshot.nodes.get('b')).toEqual(nodeInfo('b', 2));
  expect(view.snapshot.ring?.modRevision).toBe(second.ok ? second.revision : -1);
  // c is configured but not registered, a has left: only b is live.
  expect(view.liveMembers()).toEqual([{ id: 'b', weight: 2 }]);
  await b.close();
  await waitFor(() => expect(view.snapshot.nodes.size).toBe(0));
});

test('a view cut off while the cluster changed and history was compacted converges when back', async () => {
  const prefix = '/t-compact';
  const proxy = await startEtcdProxy(etcd.endpoint);
  const logger = new RecordingLogger();
  const view = watchCluster({ etcd: client(proxy.endpoint, opened), prefix, logger });
  views.push(view);
  const changes: ClusterChange[] = [];
  view.onChange((change) => changes.push(change));
  await view.ready();
  const store = new RingConfigStore({ etcd: writer, prefix });
  const a = await register({ etcd: writer, prefix, node: nodeInfo('a'), ttlSec: 5 });
  await waitFor(() => expect(view.snapshot.nodes.has('a')).toBe(true));

  proxy.cut();
  await waitFor(() => expect(logger.has('cluster watch disconnected')).toBe(true));
  const b = await register({ etcd: writer, prefix, node: nodeInfo('b'), ttlSec: 5 });
  const c = await register({ etcd: writer, prefix, node: nodeInfo('c'), ttlSec: 5 });
  await a.close();
  const r1 = await store.casRing(0, { epoch: 1, members: [{ id: 'b', weight: 1 }] });
  const r2 = await store.casRing(r1.ok ? r1.revision : -1, {
    epoch: 2,
    members: [
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ],
  });
  expect(r2.ok).toBe(true);
  const head = await writer.get(`${prefix}/ring`).exec();
  await writer.kv.compact({ revision: head.header.revision, physical: true });
  expect(view.snapshot.nodes.has('a')).toBe(true); // still the old picture

  proxy.restore();
  await waitFor(() => {
    expect(summary(view.snapshot)).toBe('nodes=b,c ring=2');
    expect(view.snapshot.ring?.modRevision).toBe(r2.ok ? r2.revision : -1);
  }, 15_000);
  // It resumed, found the history compacted, and read everything again.
  expect(logger.has('cluster watch cancelled')).toBe(true);
  expect(changes.at(-1)?.reason).toBe('resync');
  expect(view.liveMembers().map((m) => m.id)).toEqual(['b', 'c']);

  // And it keeps watching from there.
  await b.close();
  await waitFor(() => expect(summary(view.snapshot)).toBe('nodes=c ring=2'));
  await c.close();
  await proxy.close();
});

// Last in the file: it stops and restarts etcd.
test('a view resumes its watch after etcd restarts, and the last snapshot stays readable meanwhile', async () => {
  const prefix = '/t-restart';
  const logger = new RecordingLogger();
  const view = watchCluster({ etcd: client(etcd.endpoint, opened), prefix, logger });
  views.push(view);
  await view.ready();
  await writer.put(`${prefix}/nodes/a`).value(JSON.stringify(nodeInfo('a')));
  await waitFor(() => expect(view.snapshot.nodes.has('a')).toBe(true));

  await etcd.stop();
  await waitFor(() => expect(logger.has('cluster watch disconnected')).toBe(true));
  expect(view.snapshot.nodes.has('a')).toBe(true);
  await etcd.start();
  await waitFor(
    async () => {
      await writer.put(`${prefix}/nodes/b`).value(JSON.stringify(nodeInfo('b')));
    },
    10_000,
    200,
  );
  await waitFor(() => expect(summary(view.snapshot)).toBe('nodes=a,b ring=-'), 15_000);
  expect(logger.has('cluster watch cancelled')).toBe(false);
}, 60_000);
