/**
 * What `rebalance` and `failover` share: a cluster of nodes, users paired 1:1 and connected to
 * their owners by fleets of lean devices that reconnect like the SDK (moved, registry route,
 * Retry-After), and open-loop traffic running while something happens to the cluster.
 */
import type { TestCluster } from '@chat/testkit';
import { TEST_SECRET } from '@chat/testkit';
import { startFleet } from '../fleet/handle';
import type { FleetHandle } from '../fleet/handle';
import type { FleetTrafficResult } from '../fleet/messages';
import { LOCAL_ADDRESSES, ownersOf } from './common';

/** Users per fleet process (a process may hold 20,000 open files here). */
const PER_FLEET = 12_000;

export interface Population {
  readonly users: readonly string[];
  readonly fleets: readonly {
    readonly fleet: FleetHandle;
    readonly offset: number;
    readonly count: number;
  }[];
  close(): Promise<void>;
}

export async function connectPairs(
  cluster: TestCluster,
  count: number,
  prefix: string,
): Promise<Population> {
  const users = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const owners = await ownersOf(cluster.node('node-1').internalUrl, users);
  const fleets: { fleet: FleetHandle; offset: number; count: number }[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(fleets.map((f) => f.fleet.close()));
  };
  try {
    const parts = Math.ceil(count / PER_FLEET);
    const size = Math.ceil(count / parts / 2) * 2;
    for (let offset = 0; offset < count; offset += size) {
      fleets.push({ fleet: await startFleet(), offset, count: Math.min(size, count - offset) });
    }
    await Promise.all(
      fleets.map(async ({ fleet, offset, count: n }) => {
        const mine = users.slice(offset, offset + n);
        await fleet.connect({
          users: mine,
          urls: owners.slice(offset, offset + n).map((o) => cluster.node(o).url),
          secret: TEST_SECRET,
          connectRatePerSec: 3000 / fleets.length,
          maxPending: 300,
          localAddresses: LOCAL_ADDRESSES,
          reconnect: true,
          registryUrl: cluster.registryUrl,
          ackEveryMs: 50,
          timeoutMs: 30_000 + (n / 3000) * 4000 * fleets.length,
        });
        await fleet.createChats({
          chats: Array.from({ length: n / 2 }, (_, j) => ({
            creator: 2 * j,
            members: [mine[2 * j + 1]!],
          })),
          concurrency: 20,
          timeoutMs: 120_000,
        });
      }),
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { users, fleets, close };
}

/** Traffic on every fleet at its share of `rate`, both users of each pair sending. */
export function startTraffic(
  pop: Population,
  rate: number,
  durationMs: number,
  drainTimeoutMs: number,
): Promise<FleetTrafficResult[]> {
  return Promise.all(
    pop.fleets.map(({ fleet, count }) =>
      fleet.traffic({
        rate: (rate * count) / pop.users.length,
        senders: Array.from({ length: count }, (_, i) => ({ device: i, chat: Math.floor(i / 2) })),
        fanout: Array.from({ length: count / 2 }, () => 1),
        durationMs,
        drainTimeoutMs,
      }),
    ),
  );
}

export async function stopTraffic(pop: Population): Promise<void> {
  await Promise.all(pop.fleets.map((f) => f.fleet.stopTraffic()));
}

/** The fleets' longest event-loop delay (ms) in the seconds of their schedules that overlap [from, to). */
export function fleetLagBetween(
  results: readonly FleetTrafficResult[],
  fromMs: number,
  toMs: number,
): number {
  let worst = 0;
  for (const r of results) {
    const from = Math.max(0, Math.floor((fromMs - r.startedAt) / 1000));
    const to = Math.min(r.loopLagMs.length, Math.ceil((toMs - r.startedAt) / 1000));
    for (let s = from; s < to; s++) worst = Math.max(worst, r.loopLagMs[s] ?? 0);
  }
  return worst;
}

/**
 * Latencies (ms) of messages scheduled between two wall-clock times, over every fleet; with
 * `recipients`, only deliveries to those devices (global indices, as in `events`).
 */
export function latenciesBetween(
  results: readonly FleetTrafficResult[],
  fromMs: number,
  toMs: number,
  recipients?: { readonly pop: Population; readonly devices: ReadonlySet<number> },
): number[] {
  const out: number[] = [];
  results.forEach((r, i) => {
    const offset = recipients?.pop.fleets[i]!.offset ?? 0;
    const from = Math.floor((fromMs - r.startedAt) / 1000);
    const to = Math.ceil((toMs - r.startedAt) / 1000);
    for (let s = Math.max(0, from); s < Math.min(to, r.deliverMs.length); s++) {
      const latencies = r.deliverMs[s] ?? [];
      if (recipients === undefined) {
        out.push(...latencies);
        continue;
      }
      const recipientOf = r.deliverTo[s] ?? [];
      latencies.forEach((ms, j) => {
        if (recipients.devices.has(recipientOf[j]! + offset)) out.push(ms);
      });
    }
  });
  return out;
}

/** Welcomes and closes with global device indices. */
export function events(pop: Population, results: readonly FleetTrafficResult[]) {
  const welcomes: [number, string, number][] = [];
  const closes: [number, string, number, number][] = [];
  results.forEach((r, i) => {
    const offset = pop.fleets[i]!.offset;
    for (const [d, node, at] of r.welcomes) welcomes.push([d + offset, node, at]);
    for (const [d, node, code, at] of r.closes) closes.push([d + offset, node, code, at]);
  });
  return { welcomes, closes };
}

/**
 * Highest count in any one-second bucket, per key: buckets fixed from `from` (testkit's
 * `peakPerSecond` slides its window instead).
 */
export function peakPerSecondBuckets(
  items: readonly { key: string; at: number }[],
  from: number,
): Map<string, number> {
  const buckets = new Map<string, number>();
  for (const { key, at } of items) {
    const k = `${key}\u0000${Math.floor((at - from) / 1000)}`;
    buckets.set(k, (buckets.get(k) ?? 0) + 1);
  }
  const peak = new Map<string, number>();
  for (const [k, n] of buckets) {
    const key = k.slice(0, k.indexOf('\u0000'));
    peak.set(key, Math.max(peak.get(key) ?? 0, n));
  }
  return peak;
}
