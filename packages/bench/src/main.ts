/**
 * `npm run bench -- <workload|all> [--repeats N] [--codec json|msgpack] [--users N] [--ack-ms N] [--out NAME] [--quick] [--rate N] [--citus]`
 *
 * Runs the named workload(s) and writes `bench-results/<workload>.json` (every measurement)
 * and `bench-results/<workload>.md` (the summary table) under the repository root.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@chat/testkit';
import type { CodecName } from './loadgen/messages';
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
import { LEGACY_MOVES_ENV } from './fleet/lean-ws';

interface CliOptions {
  readonly workload: string;
  readonly repeats: number | undefined;
  readonly codec: CodecName;
  readonly users: number | undefined;
  readonly quick: boolean;
  readonly ackMs: number | undefined;
  /** Base name of the result files (default: the workload's name). */
  readonly out: string | undefined;
  /**
   * Durable workloads: offer only this rate (one step, e.g. to profile at it); rebalance and
   * failover: their load (instead of half the three-node durable rate, or their default).
   */
  readonly rate: number | undefined;
  /** Fleet devices move the old way (close, then reconnect) instead of overlapping. */
  readonly legacyMoves: boolean;
  /** Durable workloads: on Citus (a coordinator and two workers) instead of one PostgreSQL. */
  readonly citus: boolean;
}

const USAGE =
  'usage: npm run bench -- <durable-1to1|durable-1to1-3node|idle|cross-node|group-fanout|rebalance|failover|all> [--repeats N] [--codec json|msgpack] [--users N] [--ack-ms N] [--out NAME] [--quick] [--rate N] [--citus] [--legacy-moves]';

function parseArgs(argv: readonly string[]): CliOptions {
  let workload = '';
  let repeats: number | undefined;
  let users: number | undefined;
  let codec: CodecName = 'json';
  let quick = false;
  let ackMs: number | undefined;
  let out: string | undefined;
  let rate: number | undefined;
  let citus = false;
  let legacyMoves = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--repeats') repeats = positiveInt(arg, value());
    else if (arg === '--users') users = positiveInt(arg, value());
    else if (arg === '--ack-ms') ackMs = positiveInt(arg, value());
    else if (arg === '--rate') rate = positiveInt(arg, value());
    else if (arg === '--out') {
      out = value();
      if (!/^[A-Za-z0-9._-]+$/.test(out)) throw new Error('--out takes a plain file base name');
    } else if (arg === '--codec') {
      const v = value();
      if (v !== 'json' && v !== 'msgpack') throw new Error(`--codec json|msgpack\n${USAGE}`);
      codec = v;
    } else if (arg === '--quick') quick = true;
    else if (arg === '--citus') citus = true;
    else if (arg === '--legacy-moves') legacyMoves = true;
    else if (!arg.startsWith('-') && workload === '') workload = arg;
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  if (workload === '') throw new Error(USAGE);
  return { workload, repeats, codec, users, quick, ackMs, out, rate, citus, legacyMoves };
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

function log(line: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

async function durable1to1(cli: CliOptions, nodes: 1 | 3 = 1): Promise<void> {
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
function halfLoad(cli: CliOptions): { rate?: number } {
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
  cli: CliOptions,
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

const repeatsOr = (cli: CliOptions, full: number): number => cli.repeats ?? (cli.quick ? 1 : full);

const workloads: Readonly<Record<string, (cli: CliOptions) => Promise<void>>> = {
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
          ...halfLoad(cli),
          repeats: repeatsOr(cli, defaultRebalanceOptions.repeats),
          log,
        }),
      () => 'scale-out 3 → 4 nodes under half load, durable Postgres',
    ),
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
  const cli = parseArgs(process.argv.slice(2));
  // Read by the fleet processes (lean-ws.ts), which inherit the environment.
  if (cli.legacyMoves) process.env[LEGACY_MOVES_ENV] = '1';
  const isAll = cli.workload === 'all';
  const names = isAll ? Object.keys(workloads) : [cli.workload];
  const started = Date.now();
  const loadStart = loadavg();
  for (const name of names) {
    const run = workloads[name];
    if (run === undefined) throw new Error(`unknown workload ${name}\n${USAGE}`);
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
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
