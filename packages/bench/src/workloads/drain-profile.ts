/**
 * What a drain costs beside the steady traffic: CPU per second of every node and of Postgres, and
 * the statements that took more of Postgres's time per second, in a steady window before the
 * scale-out against the drain itself. The profile that comes before any change to the drain.
 */
import { Client } from 'pg';
import type { TestCluster } from '@chat/testkit';
import type { Log } from './common';
import type { DbSnapshot, StatementDelta } from '../pg-stats';
import { PgStats, diffSnapshots } from '../pg-stats';
import { processCpuSeconds, treeCpuSeconds } from '../procstat';

interface Mark {
  readonly at: number;
  readonly cpu: Readonly<Record<string, number>>;
  readonly db: DbSnapshot;
  /** Backend samples since the previous mark: what each busy backend waited on, and in which statement. */
  readonly waits: ReadonlyMap<string, number>;
}

export interface DrainProfile {
  /** CPU cores used per process group (node ids, `postgres`), before and during. */
  readonly coresBefore: Readonly<Record<string, number>>;
  readonly coresDuring: Readonly<Record<string, number>>;
  /** Busy backends per sample by wait (`CPU` when running) and statement, before and during. */
  readonly waitsBefore: Readonly<Record<string, number>>;
  readonly waitsDuring: Readonly<Record<string, number>>;
  /** Statements by Postgres milliseconds per second added during the drain. */
  readonly addedStatements: readonly {
    readonly query: string;
    readonly msPerSecBefore: number;
    readonly msPerSecDuring: number;
    readonly callsPerSecBefore: number;
    readonly callsPerSecDuring: number;
    readonly walKbPerSecBefore: number;
    readonly walKbPerSecDuring: number;
  }[];
  /** Commits per second (every commit waits for its WAL flush). */
  readonly commitsPerSecBefore: number;
  readonly commitsPerSecDuring: number;
}

/** One node's second: its longest event-loop delay and the time its garbage collector took. */
export interface NodeSecond {
  readonly at: number;
  readonly node: string;
  readonly loopLagMaxMs: number;
  readonly gcMs: number;
}

/** A metric's value (summed over its label sets) in a Prometheus text page; NaN when absent. */
export function promValue(page: string, name: string): number {
  let sum = Number.NaN;
  for (const line of page.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (Number.isNaN(sum) ? 0 : sum) + value;
  }
  return sum;
}

export class DrainProfiler {
  private waits = new Map<string, number>();
  private samples = 0;
  private sampling = false;
  private readonly timer: NodeJS.Timeout;
  /** Each node's /metrics once a second: event-loop delay (reset by each scrape) and GC time. */
  private readonly secondsTimer: NodeJS.Timeout;
  private readonly gcTotals = new Map<string, number>();
  private readonly seconds: NodeSecond[] = [];

  private constructor(
    private readonly cluster: TestCluster,
    private readonly admin: Client,
    private readonly stats: PgStats,
    private readonly postmasterPid: number,
  ) {
    this.timer = setInterval(() => void this.sampleWaits(), 100);
    this.secondsTimer = setInterval(() => void this.sampleNodes(), 1000);
  }

  private async sampleNodes(): Promise<void> {
    await Promise.all(
      [...this.cluster.nodes].map(async ([id, node]) => {
        try {
          const res = await fetch(`${node.internalUrl}/metrics`, {
            signal: AbortSignal.timeout(900),
          });
          const page = await res.text();
          const gcTotal = promValue(page, 'nodejs_gc_duration_seconds_sum') * 1000;
          const previous = this.gcTotals.get(id);
          this.gcTotals.set(id, gcTotal);
          if (previous === undefined) return;
          this.seconds.push({
            at: Date.now(),
            node: id,
            loopLagMaxMs: Math.round(promValue(page, 'nodejs_eventloop_lag_max_seconds') * 1000),
            gcMs: Math.round(gcTotal - previous),
          });
        } catch {
          // a node too busy to answer within the second shows as a gap
        }
      }),
    );
  }

  /** Per node, `second:lagMax/gc` (ms) of the samples in [from, to), seconds counted from `zero`. */
  nodeTimeline(from: number, to: number, zero: number): Record<string, string> {
    const out: Record<string, string[]> = {};
    for (const x of this.seconds) {
      if (x.at < from || x.at >= to) continue;
      (out[x.node] ??= []).push(`${Math.round((x.at - zero) / 1000)}s:${x.loopLagMaxMs}/${x.gcMs}`);
    }
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.join(' ')]));
  }

  static async start(cluster: TestCluster, postmasterPid: number): Promise<DrainProfiler> {
    const admin = new Client({ connectionString: cluster.db.url });
    admin.on('error', () => undefined);
    await admin.connect();
    await admin.query('create extension if not exists pg_stat_statements');
    return new DrainProfiler(
      cluster,
      admin,
      new PgStats([{ admin, dbUrl: cluster.db.url }]),
      postmasterPid,
    );
  }

  async mark(): Promise<Mark> {
    const cpu: Record<string, number> = { postgres: treeCpuSeconds(this.postmasterPid) };
    for (const [id, node] of this.cluster.nodes) cpu[id] = processCpuSeconds(node.pid);
    const waits = new Map([...this.waits].map(([k, n]) => [k, n / Math.max(1, this.samples)]));
    this.waits = new Map();
    this.samples = 0;
    return { at: Date.now(), cpu, db: await this.stats.snapshot(this.cluster.db.name), waits };
  }

  private async sampleWaits(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      // A backend waiting on a lock is counted with what its first blocker is doing: the head
      // of a convoy is what to look at.
      const { rows } = await this.admin.query<{ what: string }>(
        `select coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') || ' | ' ||
            regexp_replace(left(a.query, 60), '\\s+', ' ', 'g') ||
            coalesce(' <- blocked by ' || coalesce(b.state || ' ' || b.wait_event_type || ':' ||
              b.wait_event, b.state) || ' | ' ||
              regexp_replace(left(b.query, 50), '\\s+', ' ', 'g'), '') as what
         from pg_stat_activity a
         left join pg_stat_activity b on b.pid = (pg_blocking_pids(a.pid))[1]
         where a.datname = current_database() and a.state = 'active'
           and a.pid <> pg_backend_pid() and a.backend_type = 'client backend'`,
      );
      this.samples++;
      for (const r of rows) this.waits.set(r.what, (this.waits.get(r.what) ?? 0) + 1);
    } catch {
      // a sample lost to a busy server is just a sample
    } finally {
      this.sampling = false;
    }
  }

  static compare(a: Mark, b: Mark, c: Mark, top = 14): DrainProfile {
    const cores = (x: Mark, y: Mark): Record<string, number> => {
      const sec = (y.at - x.at) / 1000;
      return Object.fromEntries(
        Object.keys(y.cpu).map((k) => [k, round2(((y.cpu[k] ?? 0) - (x.cpu[k] ?? 0)) / sec)]),
      );
    };
    const perSec = (x: Mark, y: Mark): Map<string, StatementDelta> =>
      new Map(diffSnapshots(x.db, y.db, 1000).topStatements.map((s) => [s.query, s]));
    const beforeSec = (b.at - a.at) / 1000;
    const duringSec = (c.at - b.at) / 1000;
    const before = perSec(a, b);
    const during = perSec(b, c);
    const added = [...during.values()]
      .map((s) => ({
        query: s.query,
        msPerSecBefore: round2((before.get(s.query)?.totalMs ?? 0) / beforeSec),
        msPerSecDuring: round2(s.totalMs / duringSec),
        callsPerSecBefore: round2((before.get(s.query)?.calls ?? 0) / beforeSec),
        callsPerSecDuring: round2(s.calls / duringSec),
        walKbPerSecBefore: round2((before.get(s.query)?.walBytes ?? 0) / 1024 / beforeSec),
        walKbPerSecDuring: round2(s.walBytes / 1024 / duringSec),
      }))
      .sort((x, y) => y.msPerSecDuring - y.msPerSecBefore - (x.msPerSecDuring - x.msPerSecBefore))
      .slice(0, top);
    const topWaits = (m: Mark): Record<string, number> =>
      Object.fromEntries(
        [...m.waits]
          .sort((x, y) => y[1] - x[1])
          .slice(0, top)
          .map(([k, v]) => [k, round2(v)]),
      );
    return {
      coresBefore: cores(a, b),
      coresDuring: cores(b, c),
      waitsBefore: topWaits(b),
      waitsDuring: topWaits(c),
      addedStatements: added,
      commitsPerSecBefore: round2((b.db.commits - a.db.commits) / beforeSec),
      commitsPerSecDuring: round2((c.db.commits - b.db.commits) / duringSec),
    };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.secondsTimer);
    await this.admin.end().catch(() => undefined);
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export function logDrainProfile(log: Log, profile: DrainProfile): void {
  log(
    `    cores before ${JSON.stringify(profile.coresBefore)}, during ${JSON.stringify(profile.coresDuring)}; commits/s ${profile.commitsPerSecBefore} -> ${profile.commitsPerSecDuring}`,
  );
  for (const [phase, waits] of [
    ['before', profile.waitsBefore],
    ['during', profile.waitsDuring],
  ] as const)
    for (const [what, n] of Object.entries(waits)) log(`    busy backends ${phase} ${n}: ${what}`);
  for (const st of profile.addedStatements)
    log(
      `    pg ms/s ${st.msPerSecBefore} -> ${st.msPerSecDuring} (calls/s ${st.callsPerSecBefore} -> ${st.callsPerSecDuring}, WAL KiB/s ${st.walKbPerSecBefore} -> ${st.walKbPerSecDuring}): ${st.query}`,
    );
}
