/**
 * The soak's churn (issue 20): fleet devices told to go offline close their connections as a
 * user leaving would, stay away for the given time and come back through the registry, syncing
 * what they missed. Two real nodes, 40 lean devices in pairs sending 200 msgs/s: the churned
 * ten are closed once each, welcomed again no sooner than their offline time, their sends due
 * meanwhile are skipped, and nothing acked is lost.
 */
import { TestCluster } from '@chat/testkit';
import { connectPairs, startTraffic } from '../src/workloads/moving-users';
import type { Population } from '../src/workloads/moving-users';

let cluster: TestCluster;
let pop: Population | undefined;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 2, members: 2 });
}, 60_000);

afterAll(async () => {
  await pop?.close();
  await cluster?.close();
});

test('churned devices go offline for the given time, come back and lose nothing', async () => {
  pop = await connectPairs(cluster, 40, 'fc');
  const fleet = pop.fleets[0]!.fleet;
  const churned = Array.from({ length: 10 }, (_, i) => i);
  const offlineMs = 2_000;
  const traffic = startTraffic(pop, 200, 7_000, 10_000);
  // A second of traffic with everyone online first (pacing of the scenario, not a wait).
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const churnAt = Date.now();
  expect(await fleet.churn({ devices: churned, offlineMs })).toEqual({ closed: 10 });
  const [result] = await traffic;

  expect({ lost: result!.lost, errors: result!.errors }).toEqual({ lost: 0, errors: 0 });
  // Each device sends 5 msgs/s: 2 s or more offline skips about 10 sends of each.
  expect(result!.skipped).toBeGreaterThanOrEqual(10 * 8);
  // Closed once each, only the churned ones.
  expect(result!.closes.map((c) => c[0]).sort((a, b) => a - b)).toEqual(churned);
  const back = new Map(result!.welcomes.map(([device, , at]) => [device, at]));
  expect([...back.keys()].sort((a, b) => a - b)).toEqual(churned);
  for (const device of churned) {
    expect(back.get(device)! - churnAt).toBeGreaterThanOrEqual(offlineMs);
  }
}, 90_000);
