/**
 * `npm run bench -- <workload|all> [--repeats N] [--codec json|msgpack] [--users N] [--ack-ms N] [--out NAME] [--quick]`
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

interface CliOptions {
  readonly workload: string;
  readonly repeats: number | undefined;
  readonly codec: CodecName;
  readonly users: number | undefined;
  readonly quick: boolean;
  readonly ackMs: number | undefined;
  /** Base name of the result files (default: the workload's name). */
  readonly out: string | undefined;
}

const USAGE =
  'usage: npm run bench -- <durable-1to1|all> [--repeats N] [--codec json|msgpack] [--users N] [--ack-ms N] [--out NAME] [--quick]';

function parseArgs(argv: readonly string[]): CliOptions {
  let workload = '';
  let repeats: number | undefined;
  let users: number | undefined;
  let codec: CodecName = 'json';
  let quick = false;
  let ackMs: number | undefined;
  let out: string | undefined;
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
    else if (arg === '--out') {
      out = value();
      if (!/^[A-Za-z0-9._-]+$/.test(out)) throw new Error('--out takes a plain file base name');
    } else if (arg === '--codec') {
      const v = value();
      if (v !== 'json' && v !== 'msgpack') throw new Error(`--codec json|msgpack\n${USAGE}`);
      codec = v;
    } else if (arg === '--quick') quick = true;
    else if (!arg.startsWith('-') && workload === '') workload = arg;
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  if (workload === '') throw new Error(USAGE);
  return { workload, repeats, codec, users, quick, ackMs, out };
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

function log(line: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

async function durable1to1(cli: CliOptions): Promise<void> {
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
      `Postgres: ${output.postgresVersion.split(' ').slice(0, 2).join(' ')}, embedded, same machine; node, Postgres and the load generator each in their own process.`,
      'Latencies are measured from the scheduled (open-loop) send time, so generator lag is included.',
      'A step passes with p99 send→deliver ≤ 200 ms, ≥ 90 % of the offered rate delivered, no errors and nothing undelivered; the ladder doubles from 250 msgs/s and tries one rate between the last pass and the first failure.',
      'RSS per user = (node VmRSS with all users connected and idle − VmRSS after 20 warm-up connections came and went) / users.',
      `Whole run: ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    ],
  };
  const name = cli.out ?? 'durable-1to1';
  write(name, {
    workload: 'durable-1to1',
    info,
    options: { ...options, log: undefined },
    summary,
    repeats: output.repeats,
  });
  const markdown = renderDurable1to1Markdown(summary, info);
  writeFileSync(join(resultsDir(), `${name}.md`), markdown);
  console.log('\n' + markdown);
}

const workloads: Readonly<Record<string, (cli: CliOptions) => Promise<void>>> = {
  'durable-1to1': durable1to1,
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
  const names = cli.workload === 'all' ? Object.keys(workloads) : [cli.workload];
  for (const name of names) {
    const run = workloads[name];
    if (run === undefined) throw new Error(`unknown workload ${name}\n${USAGE}`);
    log(`workload ${name}`);
    await run(cli);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
