/**
 * `rebalance`: scale-out 3 → 4 under half load with `chatctl scale-out node-4 --rate R --wait`:
 * p99 send→deliver during the drain against before it, peak reconnects per second per node,
 * whether only the ring's movers were disconnected, drain time against movers / rate, and
 * acked-but-lost (must be 0).
 */
import { spawn } from 'node:child_process';
import { percentile, REPO_ROOT } from '@chat/testkit';
import type { Log, WorkloadOutput } from './common';
import {
  fmt,
  ownersOf,
  postmasterPid,
  sleep,
  startBenchCluster,
  withDurablePostgres,
} from './common';
import type { DrainProfile } from './drain-profile';
import { DrainProfiler, logDrainProfile } from './drain-profile';
import {
  connectPairs,
  events,
  fleetLagBetween,
  latenciesBetween,
  peakPerSecondBuckets,
  startTraffic,
  stopTraffic,
} from './moving-users';

export interface RebalanceOptions {
  readonly repeats: number;
  readonly users: number;
  /** Offered msgs/s during the whole run ("half load"). */
  readonly rate: number;
  /** Reconnects per second per draining node (chatctl --rate). */
  readonly drainRate: number;
  readonly baselineMs: number;
  /** Profile the drain (DrainProfiler): its reads add load, so figures come from runs without. */
  readonly profile: boolean;
  readonly log: Log;
}

export const defaultRebalanceOptions = Object.freeze({
  repeats: 2,
  users: 3000,
  rate: 300,
  drainRate: 50,
  baselineMs: 6000,
  profile: false,
});

interface RebalanceRun {
  readonly users: number;
  readonly movers: number;
  readonly maxMoversPerNode: number;
  readonly expectedDrainSec: number;
  /** chatctl's wall time, its own start (tsx, etcd connect) included. */
  readonly drainSec: number;
  /** From the first `moved` a device got to chatctl's exit: the drain as users see it. */
  readonly drainFromFirstMoveSec: number;
  readonly chatctlExit: number | null;
  readonly p99BeforeMs: number;
  readonly p99DuringMs: number;
  readonly p50BeforeMs: number;
  readonly p50DuringMs: number;
  /** Deliveries to the movers only (what a moved user sees): before and during the drain. */
  readonly moversP99BeforeMs: number;
  readonly moversP99DuringMs: number;
  readonly peakMovedPerNode: Record<string, number>;
  readonly peakWelcomesPerNode: Record<string, number>;
  readonly nonMoversDisconnected: number;
  readonly lost: number;
  readonly skipped: number;
  readonly errors: number;
  readonly profile?: DrainProfile;
}

/** The steady window the drain is compared with, just before the scale-out. */
const STEADY_WINDOW_MS = 3000;

function chatctl(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<number | null> {
  return new Promise((resolve) => {
    // The operator's tool runs on the operator's machine; here it shares two cores with the
    // cluster (its start compiles TypeScript: about a core for a second, right as the drain
    // begins), so it runs at the lowest CPU priority, taking only what the cluster leaves.
    const child = spawn(
      'nice',
      ['-n', '19', process.execPath, '--import', 'tsx', 'packages/cli/src/main.ts', ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export async function runRebalance(options: RebalanceOptions): Promise<WorkloadOutput> {
  const { log } = options;
  const runs: RebalanceRun[] = [];
  await withDurablePostgres(
    async (pg) => {
      for (let r = 1; r <= options.repeats; r++) {
        const cluster = await startBenchCluster(pg.url, 4, 3, {
          CHAT_DRAIN_RATE: String(options.drainRate),
        });
        try {
          const pop = await connectPairs(cluster, options.users, `rb${r}u`);
          try {
            const before = await ownersOf(cluster.node('node-1').internalUrl, pop.users);
            const traffic = startTraffic(pop, options.rate, options.baselineMs + 150_000, 10_000);
            const profiler = options.profile
              ? await DrainProfiler.start(cluster, await postmasterPid(pg.url))
              : undefined;
            await sleep(options.baselineMs - STEADY_WINDOW_MS);
            const steadyMark = await profiler?.mark();
            await sleep(STEADY_WINDOW_MS);
            const scaleMark = await profiler?.mark();
            const scaleStart = Date.now();
            const exit = await chatctl(
              [
                'scale-out',
                'node-4',
                '--rate',
                String(options.drainRate),
                '--wait',
                '--timeout',
                '120',
              ],
              { CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint, CHAT_ETCD_PREFIX: cluster.prefix },
              130_000,
            );
            const scaleEnd = Date.now();
            const profile =
              profiler === undefined
                ? undefined
                : DrainProfiler.compare(steadyMark!, scaleMark!, await profiler.mark());
            const nodeSeconds = profiler?.nodeTimeline(
              scaleStart - 4000,
              scaleEnd + 2000,
              scaleStart,
            );
            await profiler?.close();
            await sleep(3000);
            await stopTraffic(pop);
            const results = await traffic;
            const after = await ownersOf(cluster.node('node-1').internalUrl, pop.users);
            const movers = new Set<number>();
            const moversPerNode = new Map<string, number>();
            before.forEach((o, i) => {
              if (after[i] !== o) {
                movers.add(i);
                moversPerNode.set(o, (moversPerNode.get(o) ?? 0) + 1);
              }
            });
            const { welcomes, closes } = events(pop, results);
            const moved = closes.filter((c) => c[2] === 4001 && c[3] >= scaleStart);
            const peakMoved = peakPerSecondBuckets(
              moved.map((c) => ({ key: c[1], at: c[3] })),
              scaleStart,
            );
            const peakWelcomes = peakPerSecondBuckets(
              welcomes.filter((w) => w[2] >= scaleStart).map((w) => ({ key: w[1], at: w[2] })),
              scaleStart,
            );
            const beforeLat = latenciesBetween(results, 0, scaleStart);
            const duringLat = latenciesBetween(results, scaleStart, scaleEnd);
            const toMovers = { pop, devices: movers };
            const timeline: string[] = [];
            const fleetLag: string[] = [];
            for (let t = scaleStart - 4000; t < scaleEnd + 2000; t += 1000) {
              const lat = latenciesBetween(results, t, t + 1000);
              const second = `${Math.round((t - scaleStart) / 1000)}s`;
              timeline.push(`${second}:${percentile(lat, 50)}/${percentile(lat, 99)}`);
              fleetLag.push(`${second}:${fleetLagBetween(results, t, t + 1000)}`);
            }
            const moversBeforeLat = latenciesBetween(results, 0, scaleStart, toMovers);
            const moversDuringLat = latenciesBetween(results, scaleStart, scaleEnd, toMovers);
            const maxMovers = Math.max(0, ...moversPerNode.values());
            const run: RebalanceRun = {
              users: options.users,
              movers: movers.size,
              maxMoversPerNode: maxMovers,
              expectedDrainSec: maxMovers / options.drainRate,
              drainSec: (scaleEnd - scaleStart) / 1000,
              drainFromFirstMoveSec:
                moved.length === 0
                  ? 0
                  : (scaleEnd - moved.reduce((min, c) => Math.min(min, c[3]), scaleEnd)) / 1000,
              chatctlExit: exit,
              p99BeforeMs: percentile(beforeLat.slice(), 99),
              p99DuringMs: percentile(duringLat, 99),
              p50BeforeMs: percentile(beforeLat, 50),
              p50DuringMs: percentile(duringLat, 50),
              moversP99BeforeMs: percentile(moversBeforeLat, 99),
              moversP99DuringMs: percentile(moversDuringLat, 99),
              peakMovedPerNode: Object.fromEntries(peakMoved),
              peakWelcomesPerNode: Object.fromEntries(peakWelcomes),
              nonMoversDisconnected: new Set(
                closes.filter((c) => c[3] >= scaleStart && !movers.has(c[0])).map((c) => c[0]),
              ).size,
              lost: results.reduce((n, x) => n + x.lost, 0),
              skipped: results.reduce((n, x) => n + x.skipped, 0),
              errors: results.reduce((n, x) => n + x.errors, 0),
              ...(profile === undefined ? {} : { profile }),
            };
            runs.push(run);
            log(
              `  repeat ${r}: ${run.movers} movers (≤ ${maxMovers}/node), drain ${run.drainSec.toFixed(1)} s (${run.drainFromFirstMoveSec.toFixed(1)} s from the first move; expected ${run.expectedDrainSec.toFixed(1)} s, chatctl exit ${exit}), ` +
                `p99 before/during ${run.p99BeforeMs}/${run.p99DuringMs} ms (to movers ${run.moversP99BeforeMs}/${run.moversP99DuringMs} ms), peak moved/s ${JSON.stringify(run.peakMovedPerNode)}, ` +
                `welcomes/s ${JSON.stringify(run.peakWelcomesPerNode)}, non-movers disconnected ${run.nonMoversDisconnected}, lost ${run.lost}, skipped ${run.skipped}, errors ${run.errors}`,
            );
            log(`    p50/p99 ms by second from the scale-out: ${timeline.join(' ')}`);
            log(`    the fleet's longest event-loop delay, ms by second: ${fleetLag.join(' ')}`);
            for (const [node, line] of Object.entries(nodeSeconds ?? {}))
              log(`    ${node} event-loop delay max / GC ms by second: ${line}`);
            if (profile !== undefined) logDrainProfile(log, profile);
          } finally {
            await pop.close();
          }
        } finally {
          await cluster.close();
        }
      }
    },
    // The drain's profile reads pg_stat_statements.
    options.profile
      ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' }
      : {},
  );
  const peakMoved = runs.map((x) => Math.max(0, ...Object.values(x.peakMovedPerNode)));
  return {
    rows: [
      {
        measure: `send→deliver p99 before / during the drain (${options.rate} msgs/s)`,
        value: `${fmt(
          runs.map((x) => x.p99BeforeMs),
          1,
        )} / ${fmt(
          runs.map((x) => x.p99DuringMs),
          1,
        )} ms`,
        limit: `target during ≤ 2× before (ratio ${fmt(
          runs.map((x) => x.p99DuringMs / x.p99BeforeMs),
          2,
        )}) and ≤ 500 ms`,
      },
      {
        measure: `send→deliver p99 to the movers before / during the drain`,
        value: `${fmt(
          runs.map((x) => x.moversP99BeforeMs),
          1,
        )} / ${fmt(
          runs.map((x) => x.moversP99DuringMs),
          1,
        )} ms`,
        limit: `target during ≤ 2× the p99 before of all messages (ratio ${fmt(
          runs.map((x) => x.moversP99DuringMs / x.p99BeforeMs),
          2,
        )}) and ≤ 150 ms (≤ 500 ms at 20,000 users)`,
      },
      {
        measure: 'peak reconnects/s per draining node (moved closes, client side)',
        value: fmt(peakMoved, 0, '/s'),
        limit: `configured ${options.drainRate}/s; target ≤ ${Math.round(options.drainRate * 1.2)}/s`,
      },
      {
        measure: 'peak welcomes/s on the new node',
        value: fmt(
          runs.map((x) => x.peakWelcomesPerNode['node-4'] ?? 0),
          0,
          '/s',
        ),
        limit: `3 nodes × ${options.drainRate}/s = ${3 * options.drainRate}/s`,
      },
      {
        measure: `drain time: chatctl scale-out --wait / from the first move, ${options.users} users`,
        value: `${fmt(
          runs.map((x) => x.drainSec),
          1,
          ' s',
        )} / ${fmt(
          runs.map((x) => x.drainFromFirstMoveSec),
          1,
          ' s',
        )}`,
        limit: `movers/rate ${fmt(
          runs.map((x) => x.expectedDrainSec),
          1,
          ' s',
        )} (${fmt(
          runs.map((x) => x.movers),
          0,
        )} movers)`,
      },
      {
        measure: 'users disconnected that were not movers',
        value: fmt(runs.map((x) => x.nonMoversDisconnected)),
        limit: 'must be 0',
      },
      {
        measure: 'acked but never delivered',
        value: fmt(runs.map((x) => x.lost)),
        limit: 'must be 0',
      },
    ],
    raw: runs,
    notes: [
      `${options.users} users in 1:1 pairs on nodes 1–3, node-4 running but not a member; ${options.rate} msgs/s open-loop over the whole run; after ${options.baselineMs / 1000} s \`chatctl scale-out node-4 --rate ${options.drainRate} --wait\`.`,
      '“Before” is every message scheduled before the scale-out started, “during” those scheduled until chatctl returned; latencies from the scheduled send time, deliveries that came by sync after a reconnect included.',
      'Messages due while their sender was reconnecting are not sent (counted as skipped in the JSON), as a client would hold them in its outbox.',
    ],
  };
}
