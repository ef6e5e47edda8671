/**
 * `failover`: three nodes under half load, one SIGKILLed: time until all its users are back
 * (welcomed on another node), p99 send→deliver around it, acked-but-lost (must be 0); beside it
 * the budget, lease TTL + 5 s.
 */
import { percentile } from '@chat/testkit';
import type { Log, WorkloadOutput } from './common';
import { fmt, ownersOf, sleep, startBenchCluster, withDurablePostgres } from './common';
import { connectPairs, events, latenciesBetween, startTraffic, stopTraffic } from './moving-users';

export interface FailoverOptions {
  readonly repeats: number;
  readonly users: number;
  readonly rate: number;
  readonly leaseTtlSec: number;
  readonly baselineMs: number;
  readonly log: Log;
}

export const defaultFailoverOptions = Object.freeze({
  repeats: 2,
  users: 3000,
  rate: 300,
  leaseTtlSec: 5,
  baselineMs: 6000,
});

interface FailoverRun {
  readonly victims: number;
  readonly backSec: number;
  readonly back99Sec: number;
  readonly notBack: number;
  readonly p99BeforeMs: number;
  readonly p99AfterMs: number;
  readonly lost: number;
  readonly skipped: number;
}

export async function runFailover(options: FailoverOptions): Promise<WorkloadOutput> {
  const { log } = options;
  const runs: FailoverRun[] = [];
  await withDurablePostgres(async (pg) => {
    for (let r = 1; r <= options.repeats; r++) {
      const cluster = await startBenchCluster(pg.url, 3, 3, {}, options.leaseTtlSec);
      try {
        const pop = await connectPairs(cluster, options.users, `fo${r}u`);
        try {
          const owners = await ownersOf(cluster.node('node-1').internalUrl, pop.users);
          const victims = new Set(owners.flatMap((o, i) => (o === 'node-3' ? [i] : [])));
          const traffic = startTraffic(pop, options.rate, options.baselineMs + 60_000, 15_000);
          await sleep(options.baselineMs);
          const killAt = Date.now();
          cluster.node('node-3').signal('SIGKILL');
          const deadline = killAt + (options.leaseTtlSec + 40) * 1000;
          for (;;) {
            await sleep(200);
            const st = await Promise.all(pop.fleets.map((f) => f.fleet.status()));
            if (st.reduce((n, s) => n + s.connected, 0) === options.users || Date.now() > deadline)
              break;
          }
          await sleep(2000);
          await stopTraffic(pop);
          const results = await traffic;
          const { welcomes } = events(pop, results);
          const firstBack = new Map<number, number>();
          for (const [d, , at] of welcomes) {
            if (at >= killAt && victims.has(d) && !firstBack.has(d)) firstBack.set(d, at);
          }
          const times = [...firstBack.values()]
            .map((at) => (at - killAt) / 1000)
            .sort((a, b) => a - b);
          const run: FailoverRun = {
            victims: victims.size,
            backSec: times.length === victims.size ? times.at(-1)! : Number.NaN,
            back99Sec: times[Math.ceil(victims.size * 0.99) - 1] ?? Number.NaN,
            notBack: victims.size - times.length,
            p99BeforeMs: percentile(latenciesBetween(results, 0, killAt), 99),
            p99AfterMs: percentile(latenciesBetween(results, killAt, killAt + 20_000), 99),
            lost: results.reduce((n, x) => n + x.lost, 0),
            skipped: results.reduce((n, x) => n + x.skipped, 0),
          };
          runs.push(run);
          log(
            `  repeat ${r}: ${run.victims} users on the killed node, all back in ${run.backSec} s (99 % in ${run.back99Sec} s, ${run.notBack} not back), ` +
              `p99 before/after ${run.p99BeforeMs}/${run.p99AfterMs} ms, lost ${run.lost}, skipped ${run.skipped}`,
          );
        } finally {
          await pop.close();
        }
      } finally {
        await cluster.close();
      }
    }
  });
  return {
    rows: [
      {
        measure: 'time until all users of the killed node are back',
        value: fmt(
          runs.map((x) => x.backSec),
          1,
          ' s',
        ),
        limit: `lease TTL + 5 s = ${options.leaseTtlSec + 5} s (99 %: ${fmt(
          runs.map((x) => x.back99Sec),
          1,
          ' s',
        )})`,
      },
      {
        measure: `send→deliver p99 before / in the 20 s after the kill (${options.rate} msgs/s)`,
        value: `${fmt(
          runs.map((x) => x.p99BeforeMs),
          1,
        )} / ${fmt(
          runs.map((x) => x.p99AfterMs),
          0,
        )} ms`,
        limit: 'messages to the dead node’s users wait for them to come back',
      },
      {
        measure: 'acked but never delivered',
        value: fmt(runs.map((x) => x.lost)),
        limit: 'must be 0',
      },
    ],
    raw: runs,
    notes: [
      `${options.users} users in 1:1 pairs over three nodes (lease TTL ${options.leaseTtlSec} s), ${options.rate} msgs/s open-loop; after ${options.baselineMs / 1000} s node-3 gets SIGKILL. Its users retry with jittered backoff, asking the registry for their route each time, and sync when welcomed.`,
    ],
  };
}
