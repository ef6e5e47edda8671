/**
 * `idle`: N authenticated idle connections on one node (lean clients from several 127.0.0.x
 * source addresses): node RSS per connection once they settled, and the connect rate; beside
 * it a bare uWebSockets.js server holding the same number (src/bare-uws.ts).
 */
import {
  createTestDatabase,
  startNodeProcess,
  startServiceProcess,
  TEST_SECRET,
} from '@chat/testkit';
import type { ServiceProcess } from '@chat/testkit';
import { startFleet } from '../fleet/handle';
import { rssBytes } from '../procstat';
import type { Log, Row, WorkloadOutput } from './common';
import {
  BENCH_NODE_ENV,
  LOCAL_ADDRESSES,
  fmt,
  openFilesLimit,
  sleep,
  withDurablePostgres,
} from './common';

export interface IdleOptions {
  readonly levels: readonly number[];
  readonly repeats: number;
  readonly connectRatePerSec: number;
  readonly settleMs: number;
  readonly log: Log;
}

export const defaultIdleOptions = Object.freeze({
  levels: [10_000, 50_000],
  repeats: 3,
  connectRatePerSec: 10_000,
  settleMs: 2_000,
});

interface Measurement {
  readonly server: 'node' | 'bare';
  readonly connections: number;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly bytesPerConnection: number;
  readonly connectSec: number;
  readonly connectsPerSec: number;
  readonly refusals: number;
}

/** The most connections one process may hold here (open files, minus room for the rest). */
export function maxConnections(): number {
  return openFilesLimit() - 500;
}

async function measureOne(
  server: ServiceProcess,
  kind: 'node' | 'bare',
  n: number,
  options: IdleOptions,
): Promise<Measurement> {
  const url =
    kind === 'node' ? `ws://127.0.0.1:${server.port}/ws` : `ws://127.0.0.1:${server.port}/ws`;
  const connect = async (count: number, prefix: string) => {
    const fleet = await startFleet();
    const users = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    const result = await fleet.connect({
      users,
      urls: users.map(() => url),
      secret: TEST_SECRET,
      connectRatePerSec: options.connectRatePerSec,
      maxPending: 1000,
      localAddresses: LOCAL_ADDRESSES,
      reconnect: false,
      ackEveryMs: 1000,
      // The node welcomes a few hundred per second here (a store read each): allow 200/s.
      timeoutMs: 30_000 + count * 5,
    });
    return { fleet, result };
  };
  // Warm-up connections first, so lazily built state is in the baseline.
  const warm = await connect(200, 'w');
  await warm.fleet.close();
  await sleep(1000);
  const before = rssBytes(server.pid) ?? 0;
  const { fleet, result } = await connect(n, 'i');
  try {
    await waitConnections(`http://127.0.0.1:${server.port}/v1/stats`, n, 15_000);
    await sleep(options.settleMs);
    const after = rssBytes(server.pid) ?? 0;
    return {
      server: kind,
      connections: n,
      rssBeforeBytes: before,
      rssAfterBytes: after,
      bytesPerConnection: (after - before) / n,
      connectSec: result.seconds,
      connectsPerSec: n / result.seconds,
      refusals: result.refusals,
    };
  } finally {
    await fleet.close();
  }
}

async function waitConnections(statsUrl: string, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = (await (await fetch(statsUrl)).json()) as { connections?: number };
    if (stats.connections === n) return;
    if (Date.now() > deadline)
      throw new Error(`server has ${stats.connections} connections, expected ${n}`);
    await sleep(100);
  }
}

export async function runIdle(options: IdleOptions): Promise<WorkloadOutput> {
  const { log } = options;
  const cap = maxConnections();
  const levels = options.levels.map((n) => Math.min(n, cap));
  const capped = options.levels.some((n) => n > cap);
  if (capped) {
    log(
      `  open files are capped at ${cap + 500} per process here: levels ${options.levels.join(', ')} -> ${levels.join(', ')}`,
    );
  }
  const all: Measurement[] = [];
  await withDurablePostgres(async (pg) => {
    for (let r = 1; r <= options.repeats; r++) {
      for (const n of levels) {
        const db = await createTestDatabase('bench_idle', pg.url);
        const node = await startNodeProcess({
          databaseUrl: db.url,
          nodeId: 'idle-1',
          env: BENCH_NODE_ENV,
        });
        try {
          const m = await measureOne(node, 'node', n, options);
          all.push(m);
          log(
            `  repeat ${r} node ${n}: ${(m.bytesPerConnection / 1024).toFixed(2)} KiB/conn, ${Math.round(m.connectsPerSec)} connects/s`,
          );
        } finally {
          await node.stop();
          await db.drop();
        }
        const bare = await startServiceProcess({
          name: 'bare-uws',
          script: 'packages/bench/src/bare-uws.ts',
          env: {},
        });
        try {
          const m = await measureOne(bare, 'bare', n, options);
          all.push(m);
          log(
            `  repeat ${r} bare ${n}: ${(m.bytesPerConnection / 1024).toFixed(2)} KiB/conn, ${Math.round(m.connectsPerSec)} connects/s`,
          );
        } finally {
          await bare.stop();
        }
      }
    }
  });
  const rows: Row[] = [];
  for (const n of levels) {
    const of = (kind: 'node' | 'bare', pick: (m: Measurement) => number): number[] =>
      all.filter((m) => m.server === kind && m.connections === n).map(pick);
    rows.push({
      measure: `node RSS per idle authenticated connection, ${n} connections`,
      value: fmt(
        of('node', (m) => m.bytesPerConnection / 1024),
        2,
        ' KiB',
      ),
      limit: `bare uWS ${fmt(
        of('bare', (m) => m.bytesPerConnection / 1024),
        2,
        ' KiB',
      )}; target ≤ 3 KiB at 50k`,
    });
    rows.push({
      measure: `connect rate, ${n} connections (offered ${options.connectRatePerSec}/s)`,
      value: fmt(
        of('node', (m) => m.connectsPerSec),
        0,
        '/s',
      ),
      limit: `bare uWS ${fmt(
        of('bare', (m) => m.connectsPerSec),
        0,
        '/s',
      )}`,
    });
  }
  return {
    rows,
    raw: all,
    notes: [
      'RSS per connection = (VmRSS after the connections settled for ' +
        `${options.settleMs / 1000} s − VmRSS after 200 warm-up connections came and went) / N; no forced GC.`,
      'Clients: one lean bare-TCP WebSocket per user (JWT, JSON subprotocol) in a separate process, bound round-robin to 127.0.0.2–127.0.0.17.',
      ...(capped
        ? [
            `This machine caps open files at ${cap + 500} per process (hard limit; no CAP_SYS_RESOURCE to raise it), so the ${options.levels.join('/')} levels ran as ${levels.join('/')}.`,
          ]
        : []),
    ],
  };
}
