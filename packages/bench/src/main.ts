/**
 * `npm run bench -- <workload|all> [--repeats N] [--codec json|msgpack] [--users N] [--ack-ms N] [--out NAME] [--quick] [--rate N] [--citus] [--minutes N]`
 *
 * Runs the named workload(s) and writes `bench-results/<workload>.json` (every measurement)
 * and `bench-results/<workload>.md` (the summary table) under the repository root.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@chat/testkit';
import { UsageError } from '@chat/cli';
import { BENCH_USAGE, parseBenchArgs } from './bench-args';
import type { BenchArgs } from './bench-args';
import { renderDurable1to1Markdown, summarizeDurable1to1 } from './summary';
import type { Durable1to1Options } from './workloads/durable-1to1';
import { defaultDurable1to1Options, runDurable1to1 } from './workloads/durable-1to1';
import type { WorkloadOutput } from './workloads/common';
import { renderTable } from './workloads/common';
import { defaultIdleOptions, runIdle } from './workloads/idle';
import { defaultCrossNodeOptions, runCrossNode } from './workloads/cross-node';
import { defaultFanoutOptions, runGroupFanout } from './workloads/group-fanout';
import { defaultRebalanceOptions, runRebalance } from './workloads/rebalance';
import { defaultFailoverOptions, runFailover } from './workloads/failover';
import { defaultSoakOptions, runSoak, SOAK_LEASE_TTL_SEC } from './workloads/soak';
import type { SoakMinute } from './workloads/soak';
import type { DbSizes } from './soak/pg-sizes';
import { renderSoakMarkdown, renderSoakSvg, soakSeries, verdictLines } from './soak/report';
import { LEGACY_MOVES_ENV } from './fleet/fleet-features';

function log(line: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

async function durable1to1(cli: BenchArgs, nodes: 1 | 3 = 1): Promise<void> {
  const d = defaultDurable1to1Options;
  const users = cli.users ?? d.users;
  if (users < 2 || users % 2 !== 0) throw new Error('--users must be even');
  const options: Durable1to1Options = {
    ...d,
    users,
    codec: cli.codec,
    ackEveryMs: cli.ackMs ?? d.ackEveryMs,
    repeats: cli.repeats ?? (cli.quick ? 1 : d.repeats),
    ...(cli.quick ? { warmupMs: 1000, measureMs: 3000, halfMeasureMs: 4000 } : {}),
    // Citus on one 2-core machine sustains far less than plain PostgreSQL: its ladder starts
    // lower, so that it finds the rate it sustains.
    ...(cli.citus ? { ladder: { ...d.ladder, startRate: 50 } } : {}),
    ...(cli.rate !== undefined
      ? { ladder: { ...d.ladder, startRate: cli.rate, maxSteps: 1 }, referenceRates: [] }
      : {}),
    nodes,
    engine: cli.citus ? 'citus' : 'postgres',
    log,
  };
  const loadAvg = loadavg();
  const started = Date.now();
  const output = await runDurable1to1(options);
  const summary = summarizeDurable1to1(output.repeats);
  const info = {
    date: new Date(started).toISOString(),
    host: hostname(),
    revision: gitRevision(),
    cpus: cpus().length,
    loadAvg,
    users,
    codec: cli.codec,
    ackEveryMs: options.ackEveryMs,
    stepSec: `${options.warmupMs / 1000} s warm-up + ${options.measureMs / 1000} s measured`,
    notes: [
      cli.citus
        ? `Citus: a coordinator and two workers of ${output.postgresVersion.split(' ').slice(0, 2).join(' ')} (Debian) on this machine; rows, commits, statements and Postgres CPU are summed over the three servers; the bare limit and fsync rate are of a plain database on the coordinator's server.`
        : `Postgres: ${output.postgresVersion.split(' ').slice(0, 2).join(' ')}, embedded, same machine; node, Postgres and the load generator each in their own process.`,
      'Latencies are measured from the scheduled (open-loop) send time, so generator lag is included.',
      'A step passes with p99 send→deliver ≤ 200 ms, ≥ 90 % of the offered rate delivered, no errors and nothing undelivered; the ladder grows 1.5x from 250 msgs/s and tries one rate between the last pass and the first failure.',
      'RSS per user = (node VmRSS with all users connected and idle − VmRSS after 20 warm-up connections came and went) / users.',
      `Whole run: ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    ],
  };
  if (nodes === 3) {
    info.notes.push(
      'Three nodes (etcd, registry, ring); every device connects to its owner (the ring via /v1/owners), so a 1:1 chat spans two nodes about 2/3 of the time. RSS per user sums the three nodes.',
    );
  }
  for (const [r, repeat] of output.repeats.entries()) {
    for (const [table, rows] of Object.entries(repeat.shardRows ?? {})) {
      info.notes.push(
        `Repeat ${r + 1}, ${table}: ${rows.shards} shards, rows per shard min/median/max ${rows.min}/${rows.median}/${rows.max}.`,
      );
    }
  }
  if (highestDurable3 === undefined && nodes === 3 && !cli.citus) {
    highestDurable3 = summary.highestRate?.median;
  }
  const workload = nodes === 3 ? 'durable-1to1-3node' : 'durable-1to1';
  const name = cli.out ?? (cli.citus ? `${workload}-citus` : workload);
  write(name, {
    workload,
    info,
    options: { ...options, log: undefined },
    summary,
    repeats: output.repeats,
  });
  let markdown = renderDurable1to1Markdown(summary, info);
  if (nodes === 3) markdown = markdown.replace(/^# durable-1to1/, '# durable-1to1, three nodes');
  if (cli.citus) markdown = markdown.replace(/^(# durable-1to1[^\n]*)/, '$1, on Citus');
  writeFileSync(join(resultsDir(), `${name}.md`), markdown);
  console.log('\n' + markdown);
  const f = (v: number | undefined, d = 0): string => (v === undefined ? '–' : v.toFixed(d));
  const sp = (
    x: { median: number; min: number; max: number; n: number } | null,
    d = 0,
    u = '',
  ): string =>
    x === null ? '–' : `${f(x.median, d)}${u}${x.n > 1 ? ` (${f(x.min, d)}–${f(x.max, d)})` : ''}`;
  const label = nodes === 3 ? 'durable-1to1 (3 nodes)' : 'durable-1to1 (1 node)';
  overview.push(
    {
      workload: label,
      measure: 'highest sustained durable rate',
      value: sp(summary.highestRate, 0, ' msgs/s'),
      limit: `bare-pg ${sp(summary.bareMessagesPerSec, 0, ' msgs/s')}; target ≥ 0.5× (ratio ${sp(summary.durableOverBare, 2)})`,
    },
    {
      workload: label,
      measure: 'send→deliver p99 at half rate',
      value: sp(summary.halfDeliverP99Ms, 1, ' ms'),
      limit: 'target ≤ 50 ms',
    },
    {
      workload: label,
      measure: 'node RSS per idle connected user (1,000 users)',
      value: sp(scaleKiB(summary.rssPerUserBytes), 2, ' KiB'),
      limit: '–',
    },
  );
}

function scaleKiB(
  s: { median: number; min: number; max: number; n: number } | null,
): { median: number; min: number; max: number; n: number } | null {
  return s === null
    ? null
    : { median: s.median / 1024, min: s.min / 1024, max: s.max / 1024, n: s.n };
}

/** Highest sustained rate of the three-node durable run, for the half-load workloads after it. */
let highestDurable3: number | undefined;

/** The rate of a half-load workload: `--rate`, else half the three-node durable rate if run. */
function halfLoad(cli: BenchArgs): { rate?: number } {
  if (cli.rate !== undefined) return { rate: cli.rate };
  return highestDurable3 !== undefined ? { rate: Math.round(highestDurable3 / 2) } : {};
}

interface OverviewRow {
  readonly workload: string;
  readonly measure: string;
  readonly value: string;
  readonly limit: string;
}
const overview: OverviewRow[] = [];

async function generic(
  name: string,
  cli: BenchArgs,
  run: () => Promise<WorkloadOutput>,
  header: (seconds: number) => string,
): Promise<void> {
  const loadAvg = loadavg();
  const started = Date.now();
  const output = await run();
  const seconds = (Date.now() - started) / 1000;
  const info = {
    date: new Date(started).toISOString(),
    host: hostname(),
    revision: gitRevision(),
    cpus: cpus().length,
    loadAvg,
    seconds,
  };
  const base = cli.out ?? name;
  write(base, { workload: name, info, rows: output.rows, notes: output.notes, raw: output.raw });
  const head =
    `${info.date}, commit ${info.revision}, ${info.cpus} CPUs (load average at start ${loadAvg.map((l) => l.toFixed(2)).join(' ')}), ` +
    `${header(seconds)}; whole run ${seconds.toFixed(0)} s.`;
  const markdown = renderTable(name, head, output);
  writeFileSync(join(resultsDir(), `${base}.md`), markdown);
  console.log('\n' + markdown);
  for (const r of output.rows) overview.push({ workload: name, ...r });
}

/**
 * The soak: rewrites soak.md, soak.svg and soak.json after every minute, so that a run cut
 * short still leaves its figures; prints the verdicts at the end.
 */
/**
 * Half of what three nodes sustain on Citus on this kind of machine (about 520 msgs/s, README
 * "Citus"), as the plain soak runs at half of 3,500.
 */
const CITUS_SOAK_RATE = 260;

async function soak(cli: BenchArgs): Promise<void> {
  const started = Date.now();
  const loadAvg = loadavg();
  const engine = cli.citus ? 'citus' : 'postgres';
  const options = {
    ...defaultSoakOptions,
    engine,
    minutes: cli.minutes ?? defaultSoakOptions.minutes,
    rate: cli.rate ?? (cli.citus ? CITUS_SOAK_RATE : defaultSoakOptions.rate),
    users: cli.users ?? defaultSoakOptions.users,
    log,
  } as const;
  if (options.users % 2 !== 0) throw new Error('--users must be even');
  const base = cli.out ?? (cli.citus ? 'soak-citus' : 'soak');
  const storage = cli.citus
    ? 'Citus (a coordinator and two workers, fsync and synchronous_commit on)'
    : 'durable Postgres (fsync and synchronous_commit on)';
  let lastVerdicts: string[] = [];
  const report = (samples: readonly SoakMinute[], baseline: DbSizes): void => {
    const series = soakSeries(samples, baseline);
    lastVerdicts = verdictLines(series);
    const header =
      `${new Date(started).toISOString()}, commit ${gitRevision()}, ${hostname()}, ${cpus().length} CPUs ` +
      `(load average at start ${loadAvg.map((l) => l.toFixed(2)).join(' ')}, now ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}), ` +
      `three nodes on ${storage}, ${options.users} users in 1:1 pairs, ` +
      `${options.rate} msgs/s open-loop, ${samples.length} of ${options.minutes} minutes; ` +
      `each minute ${(options.churnPerMinute * 100).toFixed(0)} % of the users go offline for ${options.offlineMs / 1000}–${options.offlineMs / 1000 + 1} s and reconnect.`;
    const notes = [
      `Reproduce: \`npm run bench -- soak --minutes ${options.minutes}${cli.citus ? ' --citus' : ''}${cli.rate === undefined ? '' : ` --rate ${options.rate}`}\`.`,
      'Rule: a series is flat when the least-squares line through its last two thirds of minutes (the first third is warm-up) moves over that span by at most the limit shown, as a share of the mean over the span, or by less than the floor shown; otherwise it grows or falls (falls: settling after a rough start, not a leak). Limits: RSS 10 %, heap used 20 % (a sample includes garbage not collected yet), p99 25 % (noise), inbox rows 25 % or 5,000 rows (the unacked backlog hovers near zero), inbox table size 10 %, messages table growth and dead tuples per message stored 10 % and 25 % (autovacuum starts at 20 % of a table dead, so the saw-tooth of dead tuples rises with the messages table; per message stored it must not).',
      'Inbox events are deleted once every device acked them, so inbox rows and the inbox table must stay flat; messages stay for the retention period (30 days; bodies of delivered messages are cleared after 5 minutes), so the messages table is judged per acked message since the traffic started: flat means linear growth with the traffic, a rise would be bloat.',
      'The machine is shared with other engineers’ tests running at the same time: p99 (from the scheduled send time, deliveries by sync after a reconnect included) is noisy and says little on its own; its trend is what counts.',
      'Each minute is a 60 s open-loop schedule followed by its drain (until every acked message was delivered, at most 15 s), then the samples: node VmRSS (/proc), heapUsed (/v1/stats), pg_total_relation_size and n_dead_tup of every table (pg_stat_user_tables; on Citus summed over the coordinator and the workers, each shard under its table), count(*) of inbox.',
      'Messages due while their sender was offline are not sent (skipped), as a client would hold them in its outbox. Lost = acked but not delivered by the end of that minute’s drain (later deliveries are not matched across minutes).',
      `Nodes hold the production lease (CHAT_LEASE_TTL_SEC ${SOAK_LEASE_TTL_SEC} s). The load generator (one fleet process) shares the same two cores: when they are starved its own lag is part of the latency.`,
    ];
    writeFileSync(
      join(resultsDir(), `${base}.md`),
      renderSoakMarkdown(samples, series, header, notes, base),
    );
    writeFileSync(
      join(resultsDir(), `${base}.svg`),
      renderSoakSvg(
        series,
        `soak${cli.citus ? ' on Citus' : ''}: ${options.rate} msgs/s on three nodes, ${options.users} users with churn; dashed: least-squares line of the judged span`,
      ),
    );
    write(base, { workload: 'soak', started: new Date(started).toISOString(), baseline, samples });
  };
  await runSoak({ ...options, onMinute: report });
  console.log('\n' + lastVerdicts.join('\n'));
}

const repeatsOr = (cli: BenchArgs, full: number): number => cli.repeats ?? (cli.quick ? 1 : full);

const workloads: Readonly<Record<string, (cli: BenchArgs) => Promise<void>>> = {
  'durable-1to1': (cli) => durable1to1(cli, 1),
  'durable-1to1-3node': (cli) => durable1to1(cli, 3),
  idle: (cli) =>
    generic(
      'idle',
      cli,
      () =>
        runIdle({
          ...defaultIdleOptions,
          ...(cli.quick ? { levels: [2000, 5000] } : {}),
          repeats: repeatsOr(cli, defaultIdleOptions.repeats),
          log,
        }),
      () => 'one node on durable Postgres, idle lean clients; medians over repeats',
    ),
  'cross-node': (cli) =>
    generic(
      'cross-node',
      cli,
      () =>
        runCrossNode({
          ...defaultCrossNodeOptions,
          repeats: repeatsOr(cli, defaultCrossNodeOptions.repeats),
          log,
        }),
      () =>
        'two nodes on durable Postgres, same-node and cross-node 1:1 pairs alternated at the same rate',
    ),
  'group-fanout': (cli) =>
    generic(
      'group-fanout',
      cli,
      () =>
        runGroupFanout({
          ...defaultFanoutOptions,
          repeats: repeatsOr(cli, defaultFanoutOptions.repeats),
          log,
        }),
      () => 'three nodes on durable Postgres, 100-member groups',
    ),
  rebalance: (cli) =>
    generic(
      cli.users !== undefined && cli.users > defaultRebalanceOptions.users
        ? 'rebalance-large'
        : 'rebalance',
      cli,
      () =>
        runRebalance({
          ...defaultRebalanceOptions,
          ...(cli.users !== undefined ? { users: cli.users } : {}),
          ...(cli.users !== undefined && cli.users >= 10_000 ? { drainRate: 200 } : {}),
          ...(cli.drainRate !== undefined ? { drainRate: cli.drainRate } : {}),
          profile: cli.profile,
          ...halfLoad(cli),
          repeats: repeatsOr(cli, defaultRebalanceOptions.repeats),
          log,
        }),
      () => 'scale-out 3 → 4 nodes under half load, durable Postgres',
    ),
  soak,
  failover: (cli) =>
    generic(
      'failover',
      cli,
      () =>
        runFailover({
          ...defaultFailoverOptions,
          ...(cli.users !== undefined ? { users: cli.users } : {}),
          ...halfLoad(cli),
          repeats: repeatsOr(cli, defaultFailoverOptions.repeats),
          log,
        }),
      () => 'three nodes on durable Postgres, one SIGKILLed under half load',
    ),
};

/**
 * The repeats of each workload in `all`, sized so that the whole run stays under 15 minutes.
 * `idle` runs once there: connecting ~30k clients twice would take most of the budget alone
 * (`npm run bench -- idle` repeats it).
 */
const ALL_REPEATS: Readonly<Record<string, number>> = {
  'durable-1to1': 2,
  'durable-1to1-3node': 2,
  idle: 1,
  'cross-node': 2,
  'group-fanout': 2,
  rebalance: 2,
  failover: 2,
};

/** The commit measured, with `+dirty` when the work tree has changes. */
function gitRevision(): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? '+dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

function resultsDir(): string {
  const dir = join(REPO_ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function write(name: string, value: unknown): void {
  writeFileSync(join(resultsDir(), `${name}.json`), JSON.stringify(value, null, 2) + '\n');
}

async function main(): Promise<void> {
  const cli = parseBenchArgs(process.argv.slice(2));
  // Read by the fleet processes (fleet-features.ts), which inherit the environment.
  if (cli.legacyMoves) process.env[LEGACY_MOVES_ENV] = '1';
  const isAll = cli.workload === 'all';
  // The soak takes half an hour: never part of `all`.
  const names = isAll ? Object.keys(workloads).filter((n) => n !== 'soak') : [cli.workload];
  const started = Date.now();
  const loadStart = loadavg();
  for (const name of names) {
    const run = workloads[name];
    if (run === undefined) throw new UsageError(`unknown workload ${name}\n${BENCH_USAGE}`);
    log(`workload ${name}`);
    try {
      await run(
        isAll ? { ...cli, repeats: cli.repeats ?? ALL_REPEATS[name], out: undefined } : cli,
      );
    } catch (err) {
      if (!isAll) throw err;
      // One broken workload must not cost the rest of the run.
      const message = err instanceof Error ? err.message : String(err);
      log(`workload ${name} FAILED: ${message}`);
      overview.push({
        workload: name,
        measure: 'FAILED',
        value: message.split('\n')[0]!,
        limit: '–',
      });
    }
  }
  if (isAll) {
    const seconds = (Date.now() - started) / 1000;
    const lines = [
      '# all workloads',
      '',
      `${new Date(started).toISOString()}, commit ${gitRevision()}, ${cpus().length} CPUs, load average at start ${loadStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )}; whole run ${(seconds / 60).toFixed(1)} min. Medians of the repeats, (min–max) beside them; each workload's own file has the details.`,
      '',
      '| workload | measure | median (min–max) | limit / target beside it |',
      '| --- | --- | --- | --- |',
      ...overview.map((r) => `| ${r.workload} | ${r.measure} | ${r.value} | ${r.limit} |`),
    ];
    writeFileSync(join(resultsDir(), 'all.md'), lines.join('\n') + '\n');
    console.log('\n' + lines.join('\n'));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`bench: ${err.message}`);
      process.exit(err.exitCode);
    }
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
