/**
 * Where an idle connection's memory goes: one node on durable Postgres with the inspector on,
 * N lean idle connections; before and after, over the inspector: a full GC,
 * process.memoryUsage(), and a heap snapshot summarized by constructor (self size).
 *
 * Run: npx tsx packages/bench/src/profile/idle-heap.ts [connections=10000]
 */
import { Inspector } from './inspector';
import { createTestDatabase, startNodeProcess, TEST_SECRET } from '@chat/testkit';
import { startFleet } from '../fleet/handle';
import {
  BENCH_NODE_ENV,
  LOCAL_ADDRESSES,
  rssOf,
  sleep,
  withDurablePostgres,
} from '../workloads/common';

const N = Number(process.argv[2] ?? 10_000);
const PORT = 9339;

async function main(): Promise<void> {
  await withDurablePostgres(async (pg) => {
    const db = await createTestDatabase('bench_heap', pg.url);
    const node = await startNodeProcess({
      databaseUrl: db.url,
      nodeId: 'heap-1',
      env: { ...BENCH_NODE_ENV, NODE_OPTIONS: `--inspect=127.0.0.1:${PORT}` },
    });
    const fleet = await startFleet();
    try {
      const inspector = await Inspector.open(PORT);
      const warm = await startFleet();
      const wu = Array.from({ length: 200 }, (_, i) => `hw${i}`);
      await warm.connect({
        users: wu,
        urls: wu.map(() => node.url),
        secret: TEST_SECRET,
        connectRatePerSec: 5000,
        maxPending: 500,
        localAddresses: LOCAL_ADDRESSES,
        reconnect: false,
        ackEveryMs: 1000,
        timeoutMs: 30_000,
      });
      await warm.close();
      await sleep(1000);
      const m0 = await inspector.memory();
      const rss0 = rssOf([node.pid]);
      const s0 = await inspector.snapshot();
      const users = Array.from({ length: N }, (_, i) => `h${i}`);
      await fleet.connect({
        users,
        urls: users.map(() => node.url),
        secret: TEST_SECRET,
        connectRatePerSec: 5000,
        maxPending: 500,
        localAddresses: LOCAL_ADDRESSES,
        reconnect: false,
        ackEveryMs: 1000,
        timeoutMs: 120_000,
      });
      await sleep(3000);
      const rss1 = rssOf([node.pid]);
      const m1 = await inspector.memory();
      const rss1gc = rssOf([node.pid]);
      const s1 = await inspector.snapshot();
      const per = (a: number, b: number): string => `${((b - a) / N).toFixed(0)} B/conn`;
      console.log(`${N} idle connections; per connection after a full GC:`);
      console.log(`  VmRSS before GC ${per(rss0, rss1)}, after GC ${per(rss0, rss1gc)}`);
      for (const k of ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'])
        console.log(`  ${k.padEnd(12)} ${per(m0[k]!, m1[k]!)}`);
      const diff = [...s1].map(([k, v]) => ({
        k,
        count: v.count - (s0.get(k)?.count ?? 0),
        bytes: v.bytes - (s0.get(k)?.bytes ?? 0),
      }));
      diff.sort((a, b) => b.bytes - a.bytes);
      console.log('  heap growth by constructor (self size), top 15:');
      for (const d of diff.slice(0, 15))
        console.log(
          `    ${(d.bytes / N).toFixed(0).padStart(6)} B/conn  ${(d.count / N).toFixed(2).padStart(6)} /conn  ${d.k}`,
        );
    } finally {
      await fleet.close();
      await node.stop();
      await db.drop();
    }
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
