/**
 * Where a node's CPU goes under 1:1 traffic: one node on durable Postgres with the inspector
 * on, N users in pairs (lean clients), open-loop sends at RATE for SECONDS while the V8 CPU
 * profiler runs; writes /tmp/node-cpu.cpuprofile and prints its summary (cpu-top.ts).
 * (`--cpu-prof` is not allowed in NODE_OPTIONS, hence the inspector.)
 *
 * Run: npx tsx packages/bench/src/profile/node-cpu.ts [rate=300] [seconds=8] [users=1000]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createTestDatabase, startNodeProcess, TEST_SECRET } from '@chat/testkit';
import { startFleet } from '../fleet/handle';
import { BENCH_NODE_ENV, LOCAL_ADDRESSES, withDurablePostgres } from '../workloads/common';
import { Inspector } from './inspector';

const RATE = Number(process.argv[2] ?? 300);
const SECONDS = Number(process.argv[3] ?? 8);
const USERS = Number(process.argv[4] ?? 1000);
const PORT = 9341;
const OUT = '/tmp/node-cpu.cpuprofile';

async function main(): Promise<void> {
  await withDurablePostgres(async (pg) => {
    const db = await createTestDatabase('bench_cpu', pg.url);
    const node = await startNodeProcess({
      databaseUrl: db.url,
      nodeId: 'cpu-1',
      env: { ...BENCH_NODE_ENV, NODE_OPTIONS: `--inspect=127.0.0.1:${PORT}` },
    });
    const fleet = await startFleet();
    try {
      const inspector = await Inspector.open(PORT);
      const users = Array.from({ length: USERS }, (_, i) => `p${i}`);
      await fleet.connect({
        users,
        urls: users.map(() => node.url),
        secret: TEST_SECRET,
        connectRatePerSec: 2000,
        maxPending: 200,
        localAddresses: LOCAL_ADDRESSES,
        reconnect: false,
        ackEveryMs: 50,
        timeoutMs: 60_000,
      });
      await fleet.createChats({
        chats: Array.from({ length: USERS / 2 }, (_, j) => ({
          creator: 2 * j,
          members: [users[2 * j + 1]!],
        })),
        concurrency: 20,
        timeoutMs: 60_000,
      });
      const senders = users.map((_, i) => ({ device: i, chat: Math.floor(i / 2) }));
      const fanout = users.slice(0, USERS / 2).map(() => 1);
      await fleet.traffic({ rate: RATE, senders, fanout, durationMs: 2000, drainTimeoutMs: 3000 }); // warm-up
      await inspector.call('Profiler.enable');
      await inspector.call('Profiler.setSamplingInterval', { interval: 500 });
      await inspector.call('Profiler.start');
      const t = await fleet.traffic({
        rate: RATE,
        senders,
        fanout,
        durationMs: SECONDS * 1000,
        drainTimeoutMs: 5000,
      });
      const { profile } = (await inspector.call('Profiler.stop')) as { profile: unknown };
      writeFileSync(OUT, JSON.stringify(profile));
      console.log(
        `${t.deliveries} deliveries in ${t.seconds.toFixed(1)} s at ${RATE} msgs/s, lost ${t.lost}; profile ${OUT}`,
      );
      console.log(
        execFileSync(
          process.execPath,
          ['--import', 'tsx', 'packages/bench/src/profile/cpu-top.ts', OUT, '25'],
          { encoding: 'utf8' },
        ),
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
