/**
 * `soak`: three nodes on durable Postgres under a steady open-loop load (half the sustained
 * three-node rate by default) for many minutes, with users going offline and coming back all
 * along. Each minute is one 60 s traffic schedule and its drain; after it the harness samples
 * every node's RSS (/proc) and V8 heap (/v1/stats), the database's table sizes, dead tuples and
 * inbox rows, and the minute's send→deliver percentiles. soak/report.ts judges and draws them.
 */
import { percentile, TestCluster } from '@chat/testkit';
import type { BenchEngine } from '../bench-storage';
import { startBenchStorage } from '../bench-storage';
import { rssBytes } from '../procstat';
import type { FleetTrafficResult } from '../fleet/messages';
import { sampleDbSizes } from '../soak/pg-sizes';
import type { DbSizes } from '../soak/pg-sizes';
import type { Log } from './common';
import { BENCH_NODE_ENV, sleep, startBenchCluster, withDurablePostgres } from './common';
import { connectPairs, startTraffic } from './moving-users';
import type { Population } from './moving-users';

export interface SoakOptions {
  /** Plain PostgreSQL, or Citus (a coordinator and two workers, bench-storage.ts). */
  readonly engine: BenchEngine;
  readonly minutes: number;
  /** Offered msgs/s, open-loop, over the whole run. */
  readonly rate: number;
  /** Users in 1:1 pairs, spread over the three nodes by the ring. */
  readonly users: number;
  /** Share of the users that go offline (and come back) each minute. */
  readonly churnPerMinute: number;
  /** The minute's churn happens in this many batches spread over it. */
  readonly churnBatches: number;
  /** How long a churned device stays offline (plus up to 1 s of jitter). */
  readonly offlineMs: number;
  /** After each minute's schedule, how long to wait for outstanding deliveries. */
  readonly drainTimeoutMs: number;
  readonly log: Log;
  /** Called after every minute with everything sampled so far (to write partial results). */
  readonly onMinute?: (samples: readonly SoakMinute[], baseline: DbSizes) => void;
}

export const defaultSoakOptions = Object.freeze({
  minutes: 30,
  // Half of the 3,500 msgs/s three nodes sustain (README, Performance).
  rate: 1750,
  users: 3000,
  churnPerMinute: 0.1,
  churnBatches: 5,
  offlineMs: 2000,
  drainTimeoutMs: 15_000,
});

export interface NodeMemory {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export interface SoakMinute {
  readonly minute: number;
  /** ISO time of the sample. */
  readonly at: string;
  readonly nodes: Readonly<Record<string, NodeMemory>>;
  readonly db: DbSizes;
  readonly deliverP50Ms: number;
  readonly deliverP99Ms: number;
  readonly scheduled: number;
  readonly acked: number;
  readonly skipped: number;
  readonly errors: number;
  /** Acked but not delivered by the end of the minute's drain. */
  readonly lost: number;
  /** Devices the churn took offline in the minute. */
  readonly churned: number;
  readonly welcomes: number;
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly drainMs: number;
}

export interface SoakOutput {
  readonly baseline: DbSizes;
  readonly samples: readonly SoakMinute[];
}

const MINUTE_MS = 60_000;
/** CHAT_LEASE_TTL_SEC's default (README, Configuration). */
export const SOAK_LEASE_TTL_SEC = 10;

export async function runSoak(options: SoakOptions): Promise<SoakOutput> {
  return withSoakCluster(options.engine, (cluster, sizes) => soakOn(cluster, sizes, options));
}

/** Samples the database's sizes (every server's copy on Citus). */
type SizeSampler = () => Promise<DbSizes>;

/**
 * Three nodes, all ring members, under the production lease (10 s), not the bench's 5 s: on a
 * machine this shared, a node starved for 5 s lost its lease and the ring flapped (1,500
 * reconnects in one minute).
 */
async function withSoakCluster<T>(
  engine: BenchEngine,
  fn: (cluster: TestCluster, sizes: SizeSampler) => Promise<T>,
): Promise<T> {
  if (engine === 'postgres') {
    return withDurablePostgres(async (pg) => {
      const cluster = await startBenchCluster(pg.url, 3, 3, {}, SOAK_LEASE_TTL_SEC);
      try {
        return await fn(cluster, () => sampleDbSizes(cluster.db.url));
      } finally {
        await cluster.close();
      }
    });
  }
  const storage = await startBenchStorage('citus');
  try {
    const cluster = await TestCluster.start({
      nodes: 3,
      members: 3,
      citus: storage.citus!,
      leaseTtlSec: SOAK_LEASE_TTL_SEC,
      nodeEnv: BENCH_NODE_ENV,
    });
    try {
      const name = new URL(cluster.db.url).pathname.slice(1);
      return await fn(cluster, () => sampleDbSizes(cluster.db.url, storage.urlsOf(name)));
    } finally {
      await cluster.close();
    }
  } finally {
    await storage.close();
  }
}

async function soakOn(
  cluster: TestCluster,
  sizes: SizeSampler,
  options: SoakOptions,
): Promise<SoakOutput> {
  const { log } = options;
  const pop = await connectPairs(cluster, options.users, 'soak');
  try {
    const baseline = await sizes();
    const samples: SoakMinute[] = [];
    const churn = new ChurnCursor(pop, options);
    for (let minute = 1; minute <= options.minutes; minute++) {
      let churned = 0;
      const churnAlong = async (): Promise<void> => {
        for (let b = 1; b <= options.churnBatches; b++) {
          await sleep(MINUTE_MS / (options.churnBatches + 1));
          churned += await churn.next();
        }
      };
      // Together, so that a fleet that dies fails the run at once (and the cluster is closed)
      // instead of leaving the traffic's rejection unhandled.
      const [results] = await Promise.all([
        startTraffic(pop, options.rate, MINUTE_MS, options.drainTimeoutMs),
        churnAlong(),
      ]);
      const sample = await sampleMinute(cluster, sizes, minute, results, churned);
      samples.push(sample);
      log(describe(sample));
      options.onMinute?.(samples, baseline);
    }
    return { baseline, samples };
  } finally {
    await pop.close();
  }
}

/** Walks the users round-robin, so that every batch takes devices that were not just churned. */
class ChurnCursor {
  private cursor = 0;
  private readonly perBatch: number;
  private readonly offlineMs: number;

  constructor(
    private readonly pop: Population,
    options: SoakOptions,
  ) {
    this.perBatch = Math.floor(
      (pop.users.length * options.churnPerMinute) / Math.max(1, options.churnBatches),
    );
    this.offlineMs = options.offlineMs;
  }

  async next(): Promise<number> {
    if (this.perBatch === 0) return 0;
    const byFleet = this.pop.fleets.map(() => [] as number[]);
    for (let i = 0; i < this.perBatch; i++) {
      const global = this.cursor;
      this.cursor = (this.cursor + 1) % this.pop.users.length;
      const f = this.pop.fleets.findIndex((x) => global >= x.offset && global < x.offset + x.count);
      byFleet[f]!.push(global - this.pop.fleets[f]!.offset);
    }
    const closed = await Promise.all(
      this.pop.fleets.map(({ fleet }, f) =>
        fleet.churn({ devices: byFleet[f]!, offlineMs: this.offlineMs }),
      ),
    );
    return closed.reduce((n, c) => n + c.closed, 0);
  }
}

async function nodeMemory(cluster: TestCluster): Promise<Record<string, NodeMemory>> {
  const out: Record<string, NodeMemory> = {};
  for (const [id, node] of cluster.nodes) {
    const res = await fetch(`${node.internalUrl}/v1/stats`, { signal: AbortSignal.timeout(5000) });
    const stats = (await res.json()) as { heapUsedBytes: number };
    out[id] = { rssBytes: rssBytes(node.pid) ?? Number.NaN, heapUsedBytes: stats.heapUsedBytes };
  }
  return out;
}

async function sampleMinute(
  cluster: TestCluster,
  sizes: SizeSampler,
  minute: number,
  results: readonly FleetTrafficResult[],
  churned: number,
): Promise<SoakMinute> {
  const latencies: number[] = [];
  for (const r of results) for (const bucket of r.deliverMs) latencies.push(...bucket);
  const sum = (pick: (r: FleetTrafficResult) => number): number =>
    results.reduce((n, r) => n + pick(r), 0);
  const closeCodes: Record<string, number> = {};
  for (const r of results) {
    for (const [code, n] of Object.entries(r.closeCodes))
      closeCodes[code] = (closeCodes[code] ?? 0) + n;
  }
  return {
    minute,
    at: new Date().toISOString(),
    nodes: await nodeMemory(cluster),
    db: await sizes(),
    deliverP50Ms: percentile(latencies, 50),
    deliverP99Ms: percentile(latencies, 99),
    scheduled: sum((r) => r.scheduled),
    acked: sum((r) => r.acked),
    skipped: sum((r) => r.skipped),
    errors: sum((r) => r.errors),
    lost: sum((r) => r.lost),
    churned,
    welcomes: sum((r) => r.welcomes.length),
    closeCodes,
    drainMs: Math.max(0, ...results.map((r) => r.drainMs)),
  };
}

function describe(s: SoakMinute): string {
  const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
  const nodes = Object.entries(s.nodes)
    .map(([id, m]) => `${id} ${mib(m.rssBytes)}/${mib(m.heapUsedBytes)}`)
    .join(', ');
  return (
    `  minute ${s.minute}: acked ${s.acked}, p50/p99 ${s.deliverP50Ms}/${s.deliverP99Ms} ms, lost ${s.lost}, ` +
    `skipped ${s.skipped}, errors ${s.errors}, churned ${s.churned}, welcomes ${s.welcomes}; RSS/heap MiB ${nodes}; ` +
    `db ${mib(s.db.totalBytes)} MiB, dead ${s.db.deadTuples}, inbox ${s.db.inboxRows} rows`
  );
}
