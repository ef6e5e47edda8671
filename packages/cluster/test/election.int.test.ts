import type { ChatError } from '@chat/protocol';
import type { Etcd3 } from 'etcd3';
import { startElection } from '../src';
import type { Election } from '../src';
import { client, startEtcd, waitFor } from './helpers';
import type { EtcdHandle } from './helpers';

let etcd: EtcdHandle;
let observer: Etcd3;
const opened: Etcd3[] = [];
const elections: Election[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  observer = client(etcd.endpoint, opened);
});

afterAll(async () => {
  for (const election of elections) await election.close();
  for (const c of opened) c.close();
  await etcd?.close();
});

function candidate(prefix: string, candidateId: string): Election {
  const election = startElection({
    etcd: client(etcd.endpoint, opened),
    prefix,
    name: 'cleanup',
    candidateId,
    ttlSec: 2,
  });
  elections.push(election);
  return election;
}

test('two candidates: one leader; when its lease dies the other takes over within the TTL', async () => {
  const prefix = '/t-elect';
  const a = candidate(prefix, 'a');
  await waitFor(() => expect(a.isLeader).toBe(true));
  const b = candidate(prefix, 'b');
  const lostByA: (ChatError | undefined)[] = [];
  a.onFollower((err) => lostByA.push(err));
  let bElected = 0;
  b.onLeader(() => bElected++);
  // b is a candidate (its key exists) but not the leader.
  await waitFor(async () => {
    const res = await observer.getAll().prefix(`${prefix}/election/cleanup/`).exec();
    expect(res.kvs).toHaveLength(2);
  });
  expect(b.isLeader).toBe(false);
  expect(await b.leader()).toBe('a');

  // Kill the leader's lease from outside, as an expiry would.
  const res = await observer
    .getAll()
    .prefix(`${prefix}/election/cleanup/`)
    .sort('Create', 'Ascend')
    .exec();
  const leaderKv = res.kvs[0];
  expect(leaderKv?.value.toString()).toBe('a');
  const killed = Date.now();
  await observer.leaseClient.leaseRevoke({ ID: leaderKv?.lease ?? '0' });

  await waitFor(() => expect(b.isLeader).toBe(true), 5_000, 10);
  expect(Date.now() - killed).toBeLessThan(2_000);
  expect(bElected).toBe(1);
  await waitFor(() => expect(lostByA).toHaveLength(1), 10_000);
  expect(lostByA[0]?.code).toBe('UNAVAILABLE');
  expect(a.isLeader).toBe(false);
  expect(await a.leader()).toBe('b');
  // a campaigns again and waits behind b.
  await waitFor(async () => {
    const again = await observer.getAll().prefix(`${prefix}/election/cleanup/`).exec();
    expect(again.kvs).toHaveLength(2);
  });
  expect(a.isLeader).toBe(false);
}, 30_000);

test('resign hands leadership over at once; close leaves the election', async () => {
  const prefix = '/t-resign';
  const a = candidate(prefix, 'a');
  await waitFor(() => expect(a.isLeader).toBe(true));
  const b = candidate(prefix, 'b');
  await waitFor(async () =>
    expect(await observer.getAll().prefix(`${prefix}/election/`).keys()).toHaveLength(2),
  );
  await a.resign();
  await waitFor(() => expect(b.isLeader).toBe(true));
  expect(a.isLeader).toBe(false);
  await b.close();
  await waitFor(() => expect(a.isLeader).toBe(true));
  await a.close();
  expect(await observer.getAll().prefix(`${prefix}/election/`).keys()).toHaveLength(0);
}, 30_000);
