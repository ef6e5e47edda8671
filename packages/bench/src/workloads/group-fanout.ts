/**
 * `group-fanout`: 100-member groups over three nodes, members spread by the ring; open-loop
 * sends into the groups at rising rates: deliveries/s and p99 send→deliver. Beside it the bare
 * uWS server (src/bare-uws.ts) publishing the same fan-out to the same clients, per server CPU
 * second.
 */
import { percentile, startServiceProcess, TEST_SECRET } from '@chat/testkit';
import { startFleet } from '../fleet/handle';
import type { FleetHandle } from '../fleet/handle';
import type { Log, WorkloadOutput } from './common';
import {
  between,
  cpuOf,
  fmt,
  LOCAL_ADDRESSES,
  ownersOf,
  startBenchCluster,
  withDurablePostgres,
} from './common';

export interface FanoutOptions {
  readonly repeats: number;
  readonly groups: number;
  readonly members: number;
  /** Messages per second (each goes to members − 1 others). */
  readonly rates: readonly number[];
  readonly durationMs: number;
  readonly log: Log;
}

export const defaultFanoutOptions = Object.freeze({
  repeats: 2,
  groups: 10,
  members: 100,
  rates: [10, 20, 40],
  durationMs: 5000,
});

interface Step {
  readonly server: 'cluster' | 'bare';
  readonly rate: number;
  readonly deliveriesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuSec: number;
  readonly deliveries: number;
  readonly lost: number;
  readonly passed: boolean;
}

async function ladder(
  fleet: FleetHandle,
  server: 'cluster' | 'bare',
  pids: readonly number[],
  options: FanoutOptions,
  log: Log,
): Promise<Step[]> {
  const { groups, members } = options;
  const senders = Array.from({ length: groups * members }, (_, i) => ({
    device: (i % groups) * members + Math.floor(i / groups),
    chat: i % groups,
  }));
  const fanout = Array.from({ length: groups }, () => members - 1);
  const out: Step[] = [];
  for (const rate of options.rates) {
    const cpu0 = cpuOf(pids);
    const t = await fleet.traffic({
      rate,
      senders,
      fanout,
      durationMs: options.durationMs,
      drainTimeoutMs: 5000,
    });
    const cpu = cpuOf(pids) - cpu0;
    const lat = between(t.deliverMs, 1, 1e9);
    const s: Step = {
      server,
      rate,
      deliveriesPerSec: t.deliveries / (t.seconds + t.drainMs / 1000),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      serverCpuSec: cpu,
      deliveries: t.deliveries,
      lost: t.lost,
      passed: percentile(lat, 99) <= 200 && t.lost === 0 && t.errors === 0 && t.skipped === 0,
    };
    log(
      `  ${server} ${rate} msgs/s: ${Math.round(s.deliveriesPerSec)} deliveries/s, p50/p99 ${s.p50Ms}/${s.p99Ms} ms, server CPU ${cpu.toFixed(2)} s, lost ${t.lost}${s.passed ? '' : ' FAIL'}`,
    );
    out.push(s);
    if (!s.passed) break;
  }
  return out;
}

export async function runGroupFanout(options: FanoutOptions): Promise<WorkloadOutput> {
  const { log, groups, members } = options;
  const steps: Step[] = [];
  const users = Array.from(
    { length: groups * members },
    (_, i) => `g${Math.floor(i / members)}m${i % members}`,
  );
  await withDurablePostgres(async (pg) => {
    for (let r = 1; r <= options.repeats; r++) {
      const cluster = await startBenchCluster(pg.url, 3, 3);
      const fleet = await startFleet();
      try {
        const owners = await ownersOf(cluster.node('node-1').internalUrl, users);
        await fleet.connect({
          users,
          urls: owners.map((o) => cluster.node(o).url),
          secret: TEST_SECRET,
          connectRatePerSec: 2000,
          maxPending: 200,
          localAddresses: LOCAL_ADDRESSES,
          reconnect: false,
          ackEveryMs: 50,
          timeoutMs: 30_000,
        });
        await fleet.createChats({
          chats: Array.from({ length: groups }, (_, g) => ({
            creator: g * members,
            members: users.slice(g * members + 1, (g + 1) * members),
          })),
          concurrency: 5,
          timeoutMs: 60_000,
        });
        const pids = [...cluster.nodes.values()].map((n) => n.pid);
        steps.push(...(await ladder(fleet, 'cluster', pids, options, log)));
      } finally {
        await fleet.close();
        await cluster.close();
      }
      const bare = await startServiceProcess({
        name: 'bare-uws',
        script: 'packages/bench/src/bare-uws.ts',
        env: {},
      });
      const bareFleet = await startFleet();
      try {
        await bareFleet.connect({
          users,
          urls: users.map(
            (_, i) => `ws://127.0.0.1:${bare.port}/ws?topics=g${Math.floor(i / members)}`,
          ),
          secret: TEST_SECRET,
          connectRatePerSec: 5000,
          maxPending: 500,
          localAddresses: LOCAL_ADDRESSES,
          reconnect: false,
          ackEveryMs: 50,
          timeoutMs: 30_000,
        });
        await bareFleet.createChatsBare(groups);
        steps.push(...(await ladder(bareFleet, 'bare', [bare.pid], options, log)));
      } finally {
        await bareFleet.close();
        await bare.stop();
      }
    }
  });
  const of = (server: 'cluster' | 'bare') => steps.filter((s) => s.server === server);
  const best = (server: 'cluster' | 'bare'): number[] => {
    const byRepeat: number[] = [];
    let current = 0;
    let prevRate = Infinity;
    for (const s of of(server)) {
      if (s.rate <= prevRate && prevRate !== Infinity) {
        byRepeat.push(current);
        current = 0;
      }
      prevRate = s.rate;
      if (s.passed) current = Math.max(current, s.deliveriesPerSec);
    }
    byRepeat.push(current);
    return byRepeat;
  };
  const perCpu = (server: 'cluster' | 'bare', rate: number): number[] =>
    of(server)
      .filter((s) => s.rate === rate)
      .map((s) => s.deliveries / s.serverCpuSec);
  const rows = [
    {
      measure: 'highest passing deliveries/s (p99 ≤ 200 ms, nothing lost)',
      value: fmt(best('cluster'), 0, '/s'),
      limit: `bare uWS ${fmt(best('bare'), 0, '/s')} (rates tried: ${options.rates.join(', ')} msgs/s × ${members - 1})`,
    },
  ];
  for (const rate of options.rates) {
    const c = of('cluster').filter((s) => s.rate === rate);
    const b = of('bare').filter((s) => s.rate === rate);
    if (c.length === 0) continue;
    rows.push({
      measure: `${rate} msgs/s (${rate * (members - 1)} deliveries/s): send→deliver p50 / p99`,
      value: `${fmt(
        c.map((s) => s.p50Ms),
        1,
      )} / ${fmt(
        c.map((s) => s.p99Ms),
        1,
      )} ms`,
      limit: `bare uWS ${fmt(
        b.map((s) => s.p50Ms),
        1,
      )} / ${fmt(
        b.map((s) => s.p99Ms),
        1,
      )} ms; target p99 ≤ 50 ms at half load`,
    });
    rows.push({
      measure: `${rate} msgs/s: deliveries per server CPU second (3 nodes)`,
      value: fmt(perCpu('cluster', rate), 0),
      limit: `bare uWS ${fmt(perCpu('bare', rate), 0)}`,
    });
  }
  rows.push({
    measure: 'acked but never delivered',
    value: fmt(of('cluster').map((s) => s.lost)),
    limit: 'must be 0',
  });
  return {
    rows,
    raw: steps,
    notes: [
      `${groups} groups of ${members} (${groups * members} users, one device each, on their owner nodes); every member sends in turn; ${options.durationMs / 1000} s per rate, the first second left out of the latencies; a rate fails at p99 > 200 ms or any loss, and the ladder stops there.`,
      'Bare uWS: one process, ws.publish to the group topic and an ok reply, no auth, no store, no sequence numbers.',
    ],
  };
}
