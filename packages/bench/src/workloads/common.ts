/** Pieces the cluster workloads share: Postgres, clusters, owners, result tables. */
import { execFileSync } from 'node:child_process';
import { Client } from 'pg';
import { startPostgres, TestCluster } from '@chat/testkit';
import type { PostgresHandle } from '@chat/testkit';
import { parentPid, processCpuSeconds, rssBytes } from '../procstat';
import type { Spread } from '../summary';
import { formatSpread, spread } from '../summary';

export type Log = (line: string) => void;

/** One line of a workload's table: what, the median (min–max), and its limit or target beside it. */
export interface Row {
  readonly measure: string;
  readonly value: string;
  readonly limit: string;
}

export interface WorkloadOutput {
  readonly rows: readonly Row[];
  /** Every measurement, for the JSON file. */
  readonly raw: unknown;
  readonly notes: readonly string[];
}

/**
 * Node settings for the benchmarks: no per-connection rate limit in the way, admission raised
 * (no per-address limit).
 * `BENCH_NODE_OPTIONS` (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) becomes the nodes'
 * NODE_OPTIONS, for profiling one run.
 */
export const BENCH_NODE_ENV: Readonly<Record<string, string>> = Object.freeze({
  CHAT_RATE_PER_SEC: '1000000',
  CHAT_RATE_BURST: '1000000',
  CHAT_ADMIT_RATE: '20000',
  CHAT_ADMIT_BURST: '20000',
  // The whole fleet connects from one address.
  CHAT_ADMIT_PER_ADDRESS_RATE: '0',
  ...profilingEnv(),
});

export function profilingEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  const options = process.env.BENCH_NODE_OPTIONS;
  if (options !== undefined && options !== '') env['NODE_OPTIONS'] = options;
  // CHAT_CPU_PROFILE=<dir>:<delayMs>:<durationMs>: each node writes a CPU profile.
  const profile = process.env.CHAT_CPU_PROFILE;
  if (profile !== undefined && profile !== '') env['CHAT_CPU_PROFILE'] = profile;
  return env;
}

/** Durable Postgres for one workload, closed afterwards. */
export async function withDurablePostgres<T>(
  fn: (pg: PostgresHandle) => Promise<T>,
  settings: Readonly<Record<string, string>> = {},
): Promise<T> {
  const pg = await startPostgres({ settings });
  try {
    return await fn(pg);
  } finally {
    await pg.close();
  }
}

/** The postmaster's pid (via a backend's parent). */
export async function postmasterPid(url: string): Promise<number> {
  const admin = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    const { rows } = await admin.query<{ pid: number }>('select pg_backend_pid() as pid');
    const pid = parentPid(rows[0]!.pid);
    if (pid === null) throw new Error('cannot find the postmaster');
    return pid;
  } finally {
    await admin.end().catch(() => undefined);
  }
}

export async function startBenchCluster(
  pgUrl: string,
  nodes: number,
  members: number,
  extraEnv: Readonly<Record<string, string>> = {},
  leaseTtlSec = 5,
): Promise<TestCluster> {
  return TestCluster.start({
    nodes,
    members,
    adminUrl: pgUrl,
    leaseTtlSec,
    nodeEnv: { ...BENCH_NODE_ENV, ...extraEnv },
  });
}

/** Owner node id of every user, from a node's internal /v1/owners (polled until every user has one). */
export async function ownersOf(internalUrl: string, users: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < users.length; i += 1000) {
    const slice = users.slice(i, i + 1000);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${internalUrl}/v1/owners?users=${slice.join(',')}`);
      const view = (await res.json()) as { owners: Record<string, string | null> };
      const got = slice.map((u) => view.owners[u]);
      if (got.every((o) => typeof o === 'string')) {
        out.push(...(got as string[]));
        break;
      }
      if (Date.now() > deadline) throw new Error('users have no owner after 15 s');
      await sleep(200);
    }
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function cpuOf(pids: readonly number[]): number {
  return pids.reduce((s, pid) => s + processCpuSeconds(pid), 0);
}

export function rssOf(pids: readonly number[]): number {
  return pids.reduce((s, pid) => s + (rssBytes(pid) ?? 0), 0);
}

/** Latencies of the per-second buckets [from, to). */
export function between(
  buckets: readonly (readonly number[])[],
  from: number,
  to: number,
): number[] {
  const out: number[] = [];
  for (let s = Math.max(0, from); s < Math.min(to, buckets.length); s++)
    out.push(...(buckets[s] ?? []));
  return out;
}

/** `median (min–max)` of per-repeat values. */
export function fmt(values: readonly number[], decimals = 0, unit = ''): string {
  return formatSpread(spread(values), decimals, unit);
}

export function med(values: readonly number[]): Spread | null {
  return spread(values);
}

export function renderTable(title: string, header: string, out: WorkloadOutput): string {
  const lines = [
    `# ${title}`,
    '',
    header,
    '',
    '| measure | median (min–max) | limit / target beside it |',
    '| --- | --- | --- |',
  ];
  for (const r of out.rows) lines.push(`| ${r.measure} | ${r.value} | ${r.limit} |`);
  lines.push('');
  for (const n of out.notes) lines.push(`- ${n}`);
  return lines.join('\n') + '\n';
}

/** Source addresses for the fleets: 127.0.0.2..17, each with its own ephemeral port range. */
export const LOCAL_ADDRESSES: readonly string[] = Object.freeze(
  Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`),
);

/** The open-files hard limit of this process (what every child gets at most). */
export function openFilesLimit(): number {
  try {
    return Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}
