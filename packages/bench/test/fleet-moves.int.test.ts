/**
 * The bench fleet's devices move like the SDK (issue 17): on `moved` with `closeInMs` a device
 * keeps sending and receiving on its old connection until the new one has synced, so the
 * `rebalance` workload measures moves without a gap. Three real nodes, 60 lean devices in
 * pairs, each sending every 100 ms while a ring change moves about a third of them: no send is
 * skipped for want of a connection, nothing acked is lost, and only the movers were moved.
 */
import { TestCluster } from '@chat/testkit';
import { connectPairs, startTraffic } from '../src/workloads/moving-users';
import type { Population } from '../src/workloads/moving-users';
import { ownersOf } from '../src/workloads/common';

let cluster: TestCluster;
let pop: Population | undefined;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, members: 2 });
}, 60_000);

afterAll(async () => {
  await pop?.close();
  await cluster?.close();
});

test('fleet devices overlap their moves: no skipped send, nothing lost', async () => {
  pop = await connectPairs(cluster, 60, 'fm');
  const internal = cluster.node('node-1').internalUrl;
  const before = await ownersOf(internal, pop.users);
  // 600 msgs/s over 60 devices: each sends every 100 ms, so a device without a connection for
  // the length of a reconnect would miss sends.
  const traffic = startTraffic(pop, 600, 6_000, 10_000);
  // A baseline second of traffic before the ring changes (pacing of the scenario, not a wait).
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await cluster.setMembers(['node-1', 'node-2', 'node-3']);
  const [result] = await traffic;
  const after = await ownersOf(internal, pop.users);
  const movers = new Set(before.flatMap((owner, i) => (after[i] !== owner ? [i] : [])));
  expect(movers.size).toBeGreaterThan(5);
  expect({
    lost: result!.lost,
    skipped: result!.skipped,
    errors: result!.errors,
  }).toEqual({ lost: 0, skipped: 0, errors: 0 });
  // The moves are recorded as 4001 (the moment the node moved the device), movers only.
  expect(result!.closeCodes).toEqual({ '4001': movers.size });
  expect(new Set(result!.closes.map((c) => c[0]))).toEqual(movers);
}, 90_000);
