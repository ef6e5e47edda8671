/**
 * `cross-node`: two nodes; 1:1 pairs whose users are on the same node and pairs split over the
 * two nodes, alternated at the same open-loop rate. Forwarded messages per node CPU second and
 * the latency the RPC hop adds; beside it raw msgpack-over-TCP echo (and the product's RPC echo)
 * between two processes, per CPU second (src/rpc-echo.ts).
 */
import { percentile, TEST_SECRET } from '@chat/testkit';
import { startFleet } from '../fleet/handle';
import type { FleetTrafficResult } from '../fleet/messages';
import { echoBench } from '../rpc-echo';
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

export interface CrossNodeOptions {
  readonly repeats: number;
  readonly rate: number;
  readonly pairs: number;
  readonly durationMs: number;
  readonly log: Log;
}

export const defaultCrossNodeOptions = Object.freeze({
  repeats: 3,
  rate: 300,
  pairs: 300,
  durationMs: 6000,
});

interface Phase {
  readonly kind: 'same' | 'cross';
  readonly msgsPerSec: number;
  readonly nodeCpuSec: number;
  readonly seconds: number;
  readonly deliverP50Ms: number;
  readonly deliverP99Ms: number;
  readonly lost: number;
  readonly errors: number;
}

export async function runCrossNode(options: CrossNodeOptions): Promise<WorkloadOutput> {
  const { log } = options;
  const phases: Phase[] = [];
  await withDurablePostgres(async (pg) => {
    const cluster = await startBenchCluster(pg.url, 2, 2);
    const fleet = await startFleet();
    try {
      const n1 = cluster.node('node-1');
      const candidates = Array.from({ length: options.pairs * 6 }, (_, i) => `x${i}`);
      const owners = await ownersOf(n1.internalUrl, candidates);
      const on = (id: string): string[] => candidates.filter((_, i) => owners[i] === id);
      const a = on('node-1');
      const b = on('node-2');
      const half = options.pairs / 2;
      if (a.length < options.pairs * 2 || b.length < options.pairs * 2)
        throw new Error('too few users per node');
      // Same-node pairs: half on each node. Cross pairs: one user on each node.
      const pairs: [string, string][] = [];
      for (let i = 0; i < half; i++)
        pairs.push([a[2 * i]!, a[2 * i + 1]!], [b[2 * i]!, b[2 * i + 1]!]);
      for (let i = 0; i < options.pairs; i++)
        pairs.push([a[options.pairs + i]!, b[options.pairs + i]!]);
      const users = pairs.flat();
      const ownerOf = new Map(candidates.map((u, i) => [u, owners[i]!]));
      await fleet.connect({
        users,
        urls: users.map((u) => cluster.node(ownerOf.get(u)!).url),
        secret: TEST_SECRET,
        connectRatePerSec: 2000,
        maxPending: 200,
        localAddresses: LOCAL_ADDRESSES,
        reconnect: false,
        ackEveryMs: 50,
        timeoutMs: 30_000,
      });
      await fleet.createChats({
        chats: pairs.map((_, j) => ({ creator: 2 * j, members: [pairs[j]![1]] })),
        concurrency: 20,
        timeoutMs: 60_000,
      });
      const senders = (from: number, count: number) =>
        Array.from({ length: count }, (_, j) => [
          { device: 2 * (from + j), chat: from + j },
          { device: 2 * (from + j) + 1, chat: from + j },
        ]).flat();
      const fanout = pairs.map(() => 1);
      const pids = [...cluster.nodes.values()].map((n) => n.pid);
      const run = async (kind: 'same' | 'cross'): Promise<Phase> => {
        const cpu0 = cpuOf(pids);
        const t: FleetTrafficResult = await fleet.traffic({
          rate: options.rate,
          senders:
            kind === 'same' ? senders(0, options.pairs) : senders(options.pairs, options.pairs),
          fanout,
          durationMs: options.durationMs,
          drainTimeoutMs: 5000,
        });
        const cpu = cpuOf(pids) - cpu0;
        const lat = between(t.deliverMs, 1, 1e9);
        const p: Phase = {
          kind,
          msgsPerSec: t.deliveries / t.seconds,
          nodeCpuSec: cpu,
          seconds: t.seconds,
          deliverP50Ms: percentile(lat, 50),
          deliverP99Ms: percentile(lat, 99),
          lost: t.lost,
          errors: t.errors + t.skipped,
        };
        log(
          `  ${kind}: ${Math.round(p.msgsPerSec)} msgs/s, node CPU ${cpu.toFixed(2)} s, deliver p50/p99 ${p.deliverP50Ms}/${p.deliverP99Ms} ms, lost ${t.lost}, errors ${p.errors}`,
        );
        return p;
      };
      await run('same'); // warm-up, not counted
      for (let r = 1; r <= options.repeats; r++) {
        phases.push(await run('same'));
        phases.push(await run('cross'));
      }
    } finally {
      await fleet.close();
      await cluster.close();
    }
  });
  log('  echo: raw msgpack-over-TCP and RpcServer');
  const echo = await echoBench(options.repeats, 1000, 64);
  const same = phases.filter((p) => p.kind === 'same');
  const cross = phases.filter((p) => p.kind === 'cross');
  const perRepeat = (f: (s: Phase, c: Phase) => number): number[] =>
    cross.map((c, i) => f(same[i]!, c));
  const msgs = (p: Phase): number => p.msgsPerSec * p.seconds;
  const fwdPerCpu = cross.map((c) => msgs(c) / c.nodeCpuSec);
  const fwdPerAddedCpu = perRepeat((s, c) => {
    const added = c.nodeCpuSec / msgs(c) - s.nodeCpuSec / msgs(s);
    return added > 0 ? 1 / added : Number.NaN;
  });
  const raw = echo.raw.map((r) => r.callsPerCpuSec);
  const rpc = echo.rpc.map((r) => r.callsPerCpuSec);
  const rawMedian = percentile(raw, 50);
  return {
    rows: [
      {
        measure: `send→deliver p50, same node / cross node at ${options.rate} msgs/s`,
        value: `${fmt(
          same.map((p) => p.deliverP50Ms),
          1,
        )} / ${fmt(
          cross.map((p) => p.deliverP50Ms),
          1,
        )} ms`,
        limit: '–',
      },
      {
        measure: `send→deliver p99, same node / cross node at ${options.rate} msgs/s`,
        value: `${fmt(
          same.map((p) => p.deliverP99Ms),
          1,
        )} / ${fmt(
          cross.map((p) => p.deliverP99Ms),
          1,
        )} ms`,
        limit: 'target ≤ 50 ms',
      },
      {
        measure: 'latency added by the RPC hop (cross − same), p50 / p99',
        value: `${fmt(
          perRepeat((s, c) => c.deliverP50Ms - s.deliverP50Ms),
          1,
        )} / ${fmt(
          perRepeat((s, c) => c.deliverP99Ms - s.deliverP99Ms),
          1,
        )} ms`,
        limit: '–',
      },
      {
        measure: 'node CPU per message, same node / cross node (both nodes)',
        value: `${fmt(
          same.map((p) => (p.nodeCpuSec / msgs(p)) * 1e6),
          0,
        )} / ${fmt(
          cross.map((p) => (p.nodeCpuSec / msgs(p)) * 1e6),
          0,
        )} µs`,
        limit: '–',
      },
      {
        measure: 'forwarded messages per added node CPU second (cross − same)',
        value: fmt(fwdPerAddedCpu, 0, '/s'),
        limit: `raw echo ${fmt(raw, 0, ' calls/CPU-s')}; target ≥ 70 % (${fmt(
          fwdPerAddedCpu.map((v) => (100 * v) / rawMedian),
          0,
          ' %',
        )})`,
      },
      {
        measure: 'cross-node messages per node CPU second (all the node work, both nodes)',
        value: fmt(fwdPerCpu, 0, '/s'),
        limit: `raw echo ${fmt(raw, 0, ' calls/CPU-s')} (${fmt(
          fwdPerCpu.map((v) => (100 * v) / rawMedian),
          0,
          ' %',
        )})`,
      },
      {
        measure: 'product RPC echo (RpcServer/PeerClient) per CPU second',
        value: fmt(rpc, 0, ' calls/CPU-s'),
        limit: `raw echo ${fmt(raw, 0, ' calls/CPU-s')} (${fmt(
          rpc.map((v) => (100 * v) / rawMedian),
          0,
          ' %',
        )})`,
      },
      {
        measure: 'acked but never delivered',
        value: fmt(phases.map((p) => p.lost)),
        limit: 'must be 0',
      },
    ],
    raw: { phases, echo },
    notes: [
      `${options.pairs} same-node pairs (half on each node) and ${options.pairs} cross-node pairs, each direction sending; ${options.durationMs / 1000} s per phase, phases alternated, latencies from the scheduled send time, the first second left out.`,
      'A cross-node message is written by the sender’s node and forwarded once over RPC to the recipient’s node; “added CPU” is the node CPU per message of the cross phase minus that of the same-node phase, the nearest thing to the cost of forwarding alone.',
      'Echo: one process keeps 64 calls outstanding to another over loopback TCP; calls per CPU-second of both processes.',
    ],
  };
}
