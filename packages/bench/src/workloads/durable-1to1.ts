/**
 * `durable-1to1`: one node on durable Postgres, N users paired 1:1, open-loop sends stepped up
 * (by at most 1.5x, at least 15 s measured per step) until p99 send→deliver passes 200 ms or the
 * achieved rate falls under 90 % of the offered one; then a run at half the highest sustained
 * rate and one at each reference rate. Every step also reports what Postgres did for it: rows
 * written and commits per message (its own statistics), its CPU per message, the batch sizes
 * of the nodes' store statements, what busy backends waited on and the costliest statements.
 * Beside it, in the same run and on the same server: the bare-`pg` limit for the same rows and
 * the raw commit (fsync) rate.
 *
 * `engine: 'citus'`: the same on a Citus coordinator and two workers (bench-storage.ts), with
 * every figure summed over the three servers, and the rows per shard at the end; the bare
 * limit and the fsync rate are measured on a plain database of the coordinator's server.
 */
import { Client } from 'pg';
import { createTestDatabase, startNodeProcess, TestCluster, TEST_SECRET } from '@chat/testkit';
import type { NodeProcess } from '@chat/testkit';
import { ownersOf, profilingEnv } from './common';
import { startGenerator } from '../loadgen/handle';
import type { GeneratorHandle } from '../loadgen/handle';
import type { CodecName } from '../loadgen/messages';
import { bareSendLimit, fsyncRate } from '../pg-limit';
import { batchSizesBetween, scrapeBatchSizes } from '../batch-sizes';
import { PgStats, WaitSampler, diffSnapshots } from '../pg-stats';
import { rssBytes } from '../procstat';
import { rowsPerShard, startBenchStorage } from '../bench-storage';
import type { BenchEngine, BenchStorage } from '../bench-storage';
import type { LadderEntry, LadderOptions, StepCriteria } from '../steps';
import { defaultCriteria, highestPassed, judgeStep, nextRate } from '../steps';
import type { Durable1to1Repeat, StepResult } from '../summary';

export interface Durable1to1Options {
  readonly users: number;
  readonly codec: CodecName;
  readonly repeats: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Measurement window of the half-rate run. */
  readonly halfMeasureMs: number;
  readonly drainTimeoutMs: number;
  readonly ladder: LadderOptions;
  readonly criteria: StepCriteria;
  readonly connectRatePerSec: number;
  /** A device acks at most this long after the first unacked event (the SDK's default: 20 ms)... */
  readonly ackEveryMs: number;
  /** ...or at once after this many (the SDK's default: 50). */
  readonly ackEveryEvents: number;
  /** Rates measured once more after the search (with `halfMeasureMs`), e.g. a latency target's. */
  readonly referenceRates: readonly number[];
  readonly bareSeconds: number;
  readonly fsyncSeconds: number;
  /** 1: one node without etcd; 3: a cluster (etcd, registry, ring of three). */
  readonly nodes: 1 | 3;
  /** The database: the embedded PostgreSQL, or Citus (a coordinator and two workers). */
  readonly engine: BenchEngine;
  readonly log: (line: string) => void;
}

export const defaultDurable1to1Options: Durable1to1Options = Object.freeze({
  users: 1000,
  codec: 'json' as CodecName,
  repeats: 3,
  warmupMs: 3000,
  measureMs: 15_000,
  halfMeasureMs: 15_000,
  drainTimeoutMs: 8000,
  ladder: Object.freeze({
    startRate: 250,
    factor: 1.5,
    maxRate: 64_000,
    maxSteps: 14,
    refine: true,
  }),
  criteria: defaultCriteria,
  connectRatePerSec: 500,
  ackEveryMs: 20,
  ackEveryEvents: 50,
  referenceRates: Object.freeze([550]),
  engine: 'postgres' as BenchEngine,
  bareSeconds: 5,
  fsyncSeconds: 3,
  nodes: 1 as 1 | 3,
  log: () => undefined,
});

/**
 * Node settings for the benchmark: no per-connection rate limit in the way. (Logs stay at info:
 * the harness waits for the `listening` line, and the node logs nothing per message.)
 */
const NODE_ENV: Readonly<Record<string, string>> = Object.freeze({
  CHAT_RATE_PER_SEC: '1000000',
  CHAT_RATE_BURST: '1000000',
  ...profilingEnv(),
});

/**
 * On Citus a batch becomes one statement per shard, run at once: a pool as large as the shard
 * count lets a batch's statements all run together (docs/citus.md, sizing).
 */
const CITUS_NODE_ENV: Readonly<Record<string, string>> = Object.freeze({
  CHAT_PG_POOL_MAX: process.env['CHAT_PG_POOL_MAX'] ?? '32',
});

export interface Durable1to1Output {
  readonly repeats: Durable1to1Repeat[];
  readonly postgresVersion: string;
}

export async function runDurable1to1(options: Durable1to1Options): Promise<Durable1to1Output> {
  const { log } = options;
  log(
    `starting durable ${options.engine === 'citus' ? 'Citus' : 'Postgres'} (with pg_stat_statements)`,
  );
  const storage = await startBenchStorage(options.engine);
  try {
    log(
      `database ready (postmasters ${storage.servers.map((s) => s.postmasterPid).join(', ')}, fsync=${storage.fsync})`,
    );
    const repeats: Durable1to1Repeat[] = [];
    for (let r = 1; r <= options.repeats; r++) {
      log(`repeat ${r}/${options.repeats}`);
      repeats.push(await runRepeat(options, storage));
    }
    return { repeats, postgresVersion: storage.version };
  } finally {
    await storage.close();
  }
}

async function runRepeat(
  options: Durable1to1Options,
  storage: BenchStorage,
): Promise<Durable1to1Repeat> {
  const { log } = options;
  const adminUrl = storage.adminUrl;
  const postmasterPid = storage.servers[0]!.postmasterPid;
  const where = storage.citus === undefined ? { adminUrl } : { citus: storage.citus };
  const nodeEnv = { ...NODE_ENV, ...(storage.citus === undefined ? {} : CITUS_NODE_ENV) };
  const cluster =
    options.nodes === 3
      ? await TestCluster.start({ nodes: 3, ...where, leaseTtlSec: 5, nodeEnv })
      : null;
  const db = cluster === null ? await storage.createDatabase('bench_durable') : null;
  let node: NodeProcess | null = null;
  let others: NodeProcess[] = [];
  const dbName = cluster?.db.name ?? db!.name;
  let gen: GeneratorHandle | null = null;
  const steps: StepResult[] = [];
  let half: StepResult | null = null;
  const reference: StepResult[] = [];
  let highestRate: number | null = null;
  let rssBeforeBytes = 0;
  let rssConnectedBytes = 0;
  let connectSec = 0;
  let shardRows: Durable1to1Repeat['shardRows'];
  try {
    if (cluster !== null) {
      const all = [...cluster.nodes.values()];
      node = all[0]!;
      others = all.slice(1);
    } else {
      node = await startNodeProcess({ databaseUrl: db!.url, nodeId: 'bench-1', env: nodeEnv });
    }
    const first: NodeProcess = node;
    const nodes = [first, ...others];
    const urlOf = new Map(nodes.map((n) => [n.nodeId, n.url]));
    const routed = async (prefix: string, users: number): Promise<{ urls?: string[] }> => {
      if (cluster === null) return {};
      const ids = Array.from({ length: users }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
      const owners = await ownersOf(first.internalUrl, ids);
      return { urls: owners.map((o) => urlOf.get(o)!) };
    };
    const rssAll = (): number => nodes.reduce((sum, n) => sum + (rssBytes(n.pid) ?? 0), 0);
    gen = await startGenerator();
    const connect = {
      url: node.url,
      secret: TEST_SECRET,
      codec: options.codec,
      connectRatePerSec: options.connectRatePerSec,
      maxPending: 100,
      ackEveryMs: options.ackEveryMs,
      ackEveryEvents: options.ackEveryEvents,
      timeoutMs: Math.max(30_000, (options.users / options.connectRatePerSec) * 4000),
    };
    // A few connections first, so lazily opened pg connections and warmed-up code paths are
    // in the baseline and not counted per user.
    await gen.connect({ ...connect, users: 20, prefix: 'w', ...(await routed('w', 20)) });
    await gen.disconnect();
    rssBeforeBytes = rssAll();
    const connected = await gen.connect({
      ...connect,
      users: options.users,
      prefix: 'u',
      ...(await routed('u', options.users)),
    });
    connectSec = connected.seconds;
    if (cluster === null) await waitForConnections(first, options.users, 10_000);
    else await new Promise((resolve) => setTimeout(resolve, 1000));
    rssConnectedBytes = rssAll();
    log(
      `  ${connected.connected} users connected in ${connected.seconds.toFixed(1)} s; ` +
        `RSS ${(rssBeforeBytes / 2 ** 20).toFixed(1)} -> ${(rssConnectedBytes / 2 ** 20).toFixed(1)} MiB`,
    );
    await gen.createChats({ concurrency: 20, timeoutMs: 60_000 });

    const dbUrl = cluster?.db.url ?? db!.url;
    const dbUrls = storage.urlsOf(dbName);
    // On Citus the coordinator creates it on the workers too (they refuse DDL of their own).
    await createExtension(dbUrls[0]!, 'pg_stat_statements');
    const stats = new PgStats(
      storage.servers.map((server, i) => ({ admin: server.admin, dbUrl: dbUrls[i]! })),
    );
    const internalUrls = nodes.map((n) => n.internalUrl);
    const step = async (rate: number, measureMs: number): Promise<StepResult> => {
      const before = await stats.settledSnapshot(dbName);
      const batchesBefore = await scrapeBatchSizes(internalUrls);
      const pgCpuBefore = storage.cpuSeconds();
      const serverCpuBefore = storage.cpuSecondsByServer();
      const waits = new WaitSampler(
        storage.servers.map((server) => server.admin),
        dbName,
      );
      waits.start();
      const result = await gen!.step({
        rate,
        warmupMs: options.warmupMs,
        measureMs,
        drainTimeoutMs: options.drainTimeoutMs,
        nodePid: node!.pid,
        otherNodePids: others.map((n) => n.pid),
        postmasterPid,
      });
      const waited = waits.stop();
      const pgCpu = storage.cpuSeconds() - pgCpuBefore;
      const serverCpu = storage.cpuSecondsByServer().map((s, i) => s - serverCpuBefore[i]!);
      const delta = diffSnapshots(before, await stats.settledSnapshot(dbName));
      const batches = batchSizesBetween(batchesBefore, await scrapeBatchSizes(internalUrls));
      const messages = Math.max(result.acked, 1);
      const verdict = judgeStep(
        {
          offeredRate: rate,
          achievedRate: result.achievedRate,
          deliverP99Ms: result.deliver.p99Ms,
          failures: result.errors + result.undelivered + result.disconnects,
        },
        options.criteria,
      );
      const out: StepResult = {
        ...result,
        db: {
          messages: result.acked,
          rowsPerMessage: delta.rowsWritten / messages,
          commitsPerMessage: delta.commits / messages,
          statementsPerMessage: delta.clientStatements / messages,
          serverStatementsPerMessage: delta.serverStatements / messages,
          pgCpuUsPerMessage: (pgCpu * 1e6) / messages,
          ...(serverCpu.length > 1
            ? { pgCpuUsPerMessageByServer: serverCpu.map((s) => (s * 1e6) / messages) }
            : {}),
          tables: delta.tables,
          batches,
          waits: waited.shares,
          waitSamples: waited.samples,
          topStatements: delta.topStatements,
        },
        passed: verdict.passed,
        reasons: verdict.reasons,
      };
      const send = batches['send'];
      log(
        `  ${String(rate).padStart(6)} msgs/s: ${verdict.passed ? 'pass' : 'FAIL'} achieved ${Math.round(result.achievedRate)}/s, ` +
          `ack p50/p99 ${result.ack.p50Ms}/${result.ack.p99Ms} ms, deliver p50/p99 ${result.deliver.p50Ms}/${result.deliver.p99Ms} ms, ` +
          `cpu node ${result.cpu.node.toFixed(1)} pg ${result.cpu.postgres.toFixed(1)} gen ${result.cpu.generator.toFixed(1)} s ` +
          `in ${result.windowSec.toFixed(1)} s, lag p99 ${result.lag.p99Ms} ms; per message: ${out.db!.rowsPerMessage.toFixed(2)} rows, ` +
          `${out.db!.commitsPerMessage.toFixed(2)} commits, ` +
          `${(out.db!.statementsPerMessage ?? 0).toFixed(2)}/${(out.db!.serverStatementsPerMessage ?? 0).toFixed(2)} statements, ` +
          `${Math.round(out.db!.pgCpuUsPerMessage)} µs pg CPU` +
          (out.db!.pgCpuUsPerMessageByServer === undefined
            ? '; '
            : ` (by server ${out.db!.pgCpuUsPerMessageByServer.map(Math.round).join('/')}); `) +
          `send batch p50/p99 ${send?.p50 ?? '–'}/${send?.p99 ?? '–'}` +
          (verdict.passed ? '' : ` (${verdict.reasons.join('; ')})`),
      );
      return out;
    };

    const history: LadderEntry[] = [];
    for (let rate = nextRate(history, options.ladder); rate !== null;) {
      const result = await step(rate, options.measureMs);
      steps.push(result);
      history.push({ rate, passed: result.passed });
      rate = nextRate(history, options.ladder);
    }
    highestRate = highestPassed(history);
    if (highestRate !== null) {
      log(`  highest sustained ${highestRate} msgs/s; half-rate run`);
      half = await step(highestRate / 2, options.halfMeasureMs);
    }
    for (const rate of options.referenceRates) {
      log(`  reference run at ${rate} msgs/s`);
      reference.push(await step(rate, options.halfMeasureMs));
    }
    if (storage.citus !== undefined) {
      const perTable: Record<string, Awaited<ReturnType<typeof rowsPerShard>>> = {};
      shardRows = perTable;
      for (const table of ['inbox', 'messages', 'devices']) {
        const r = await rowsPerShard(dbUrl, table);
        perTable[table] = r;
        log(
          `  ${table}: ${r.shards} shards, rows per shard min/median/max ${r.min}/${r.median}/${r.max}`,
        );
      }
    }
  } finally {
    await gen?.close();
    if (cluster !== null) await cluster.close();
    else {
      await node?.stop();
      await db!.drop();
    }
  }

  const bareDb = await createTestDatabase('bench_bare', adminUrl);
  try {
    const bare = await bareSendLimit({
      url: bareDb.url,
      users: options.users,
      seconds: options.bareSeconds,
      batchSize: 256,
      concurrency: 2,
      postmasterPid,
    });
    log(
      `  bare limit ${Math.round(bare.messagesPerSec)} msgs/s (avg batch ${bare.avgBatch.toFixed(0)}, pg ${bare.postgresCores.toFixed(2)} cores)`,
    );
    const fsync = await fsyncRate(bareDb.url, options.fsyncSeconds);
    log(`  fsync ${Math.round(fsync.commitsPerSec)} commits/s`);
    return {
      steps,
      highestRate,
      half,
      reference,
      rssBeforeBytes,
      rssConnectedBytes,
      rssPerUserBytes: (rssConnectedBytes - rssBeforeBytes) / options.users,
      connectSec,
      bare,
      fsync,
      ...(shardRows === undefined ? {} : { shardRows }),
    };
  } finally {
    await bareDb.drop();
  }
}

async function createExtension(url: string, name: string): Promise<void> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`create extension if not exists ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls the node's /v1/stats until it counts `expected` connections. */
async function waitForConnections(
  node: NodeProcess,
  expected: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${node.internalUrl}/v1/stats`);
    const stats = (await response.json()) as { connections?: number };
    if (stats.connections === expected) return;
    if (Date.now() >= deadline) {
      throw new Error(`node has ${stats.connections} connections, expected ${expected}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
