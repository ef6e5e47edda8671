/**
 * What Postgres did during a benchmark step, from its own statistics: rows written per table
 * (pg_stat_user_tables), commits (pg_stat_database), the most expensive statements
 * (pg_stat_statements, when the server preloads it) and what busy backends waited on (sampled
 * from pg_stat_activity). Snapshots are taken before and after a step and subtracted.
 *
 * On Citus the figures are summed over the coordinator and the workers, and a table's shards
 * count as the table (`inbox_102040` is `inbox`): rows written anywhere, commits anywhere
 * (a step handed to a worker commits there), statements of every server.
 */
import { Client } from 'pg';

/** Rows inserted, updated and deleted in one table. */
export interface TableWrites {
  readonly ins: number;
  readonly upd: number;
  readonly del: number;
}

export interface DbSnapshot {
  readonly tables: Readonly<Record<string, TableWrites>>;
  readonly commits: number;
  /** Statement figures by query id (empty without pg_stat_statements). */
  readonly statements: ReadonlyMap<string, StatementFigures>;
}

export interface StatementFigures {
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly rows: number;
  /** WAL written by the statement, and how much of it were full-page images. */
  readonly walBytes: number;
  readonly walFpi: number;
  /** Buffers dirtied. */
  readonly dirtied: number;
  /** Sent by a client (not run inside a function or by another server's statement). */
  readonly toplevel: boolean;
  /** Index of the server in PgStats' list (0: the one the chat nodes connect to). */
  readonly server: number;
}

/** One statement's share of a step. */
export interface StatementDelta extends StatementFigures {
  readonly meanMs: number;
}

export interface DbDelta {
  readonly tables: Readonly<Record<string, TableWrites>>;
  /** Sum of inserted, updated and deleted rows over every table. */
  readonly rowsWritten: number;
  readonly commits: number;
  /** Top statements by total execution time. */
  readonly topStatements: readonly StatementDelta[];
  /** Statements the chat nodes sent (top-level calls on the first server). */
  readonly clientStatements: number;
  /** Top-level statements on every server (on Citus also those the coordinator sent on). */
  readonly serverStatements: number;
}

/** Rows written over the tables a step writes to (not the heartbeat-like fan-out marks). */
function movingTotal(snapshot: DbSnapshot): number {
  let total = 0;
  for (const [table, w] of Object.entries(snapshot.tables)) {
    if (table !== 'fanout_marks') total += w.ins + w.upd + w.del;
  }
  return total;
}

/** One server of the database: an admin connection to it, and the database's URL on it. */
export interface StatsServer {
  readonly admin: Client;
  readonly dbUrl: string;
}

/** `inbox` for a Citus shard `inbox_102040`; other names as they are. */
function tableOf(relname: string): string {
  return relname.replace(/_\d{6,}$/, '');
}

/**
 * Reads the counters of `database` on every server (one on plain PostgreSQL) over admin
 * connections to them. pg_stat counters are per database, so an admin connection may sit in
 * another one.
 */
export class PgStats {
  private readonly statementsAvailable = new Map<number, boolean>();

  constructor(private readonly servers: readonly StatsServer[]) {}

  /**
   * A snapshot once the table counters have stopped moving. Backends report their row counts
   * about once a second, not at commit: a snapshot taken right after a step misses the last
   * second of it (and the next step would count it). Waits until the counters (the nodes'
   * once-a-second fan-out marks aside) stayed put for `quietMs`, at most `deadlineMs`.
   */
  async settledSnapshot(
    database: string,
    quietMs = 1500,
    deadlineMs = 15_000,
  ): Promise<DbSnapshot> {
    const deadline = Date.now() + deadlineMs;
    let last = await this.snapshot(database);
    let quietSince = Date.now();
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const next = await this.snapshot(database);
      if (movingTotal(next) !== movingTotal(last)) quietSince = Date.now();
      last = next;
      if (Date.now() - quietSince >= quietMs) break;
    }
    return last;
  }

  async snapshot(database: string): Promise<DbSnapshot> {
    const parts = await Promise.all(
      this.servers.map((server, index) => this.serverSnapshot(server, index, database)),
    );
    const tables: Record<string, TableWrites> = {};
    const statements = new Map<string, StatementFigures>();
    let commits = 0;
    for (const [index, part] of parts.entries()) {
      commits += part.commits;
      for (const [name, w] of Object.entries(part.tables)) {
        const t = tables[name] ?? { ins: 0, upd: 0, del: 0 };
        tables[name] = { ins: t.ins + w.ins, upd: t.upd + w.upd, del: t.del + w.del };
      }
      for (const [id, figures] of part.statements) statements.set(`${index}:${id}`, figures);
    }
    return { tables, commits, statements };
  }

  private async serverSnapshot(
    server: StatsServer,
    index: number,
    database: string,
  ): Promise<DbSnapshot> {
    const { rows: commitRows } = await server.admin.query<{ n: string }>(
      'select xact_commit as n from pg_stat_database where datname = $1',
      [database],
    );
    // pg_stat_user_tables is per database: ask inside it.
    return withClient(server.dbUrl, async (client) => {
      // Citus hides a worker's shards from catalog queries; a placeholder on plain PostgreSQL.
      await client.query('set citus.override_table_visibility = off');
      const { rows } = await client.query<{
        relname: string;
        ins: string;
        upd: string;
        del: string;
      }>(
        `select relname, n_tup_ins as ins, n_tup_upd as upd, n_tup_del as del
         from pg_stat_user_tables where schemaname = 'public'`,
      );
      const tables: Record<string, TableWrites> = {};
      for (const r of rows) {
        const name = tableOf(r.relname);
        const t = tables[name] ?? { ins: 0, upd: 0, del: 0 };
        tables[name] = {
          ins: t.ins + Number(r.ins),
          upd: t.upd + Number(r.upd),
          del: t.del + Number(r.del),
        };
      }
      return {
        tables,
        commits: Number(commitRows[0]?.n ?? 0),
        statements: await this.statements(client, index),
      };
    });
  }

  private async statements(client: Client, server: number): Promise<Map<string, StatementFigures>> {
    const out = new Map<string, StatementFigures>();
    if (this.statementsAvailable.get(server) === false) return out;
    try {
      const { rows } = await client.query<{
        queryid: string;
        query: string;
        calls: string;
        total: number;
        rows: string;
        wal_bytes: string;
        wal_fpi: string;
        dirtied: string;
        toplevel: boolean;
      }>(
        `select s.queryid::text as queryid, s.query, s.calls, s.total_exec_time as total, s.rows,
           s.wal_bytes, s.wal_fpi, s.shared_blks_dirtied as dirtied, s.toplevel
         from pg_stat_statements s join pg_database d on d.oid = s.dbid
         where d.datname = current_database()`,
      );
      this.statementsAvailable.set(server, true);
      for (const r of rows) {
        out.set(`${r.queryid}:${r.toplevel}`, {
          query: r.query,
          calls: Number(r.calls),
          totalMs: Number(r.total),
          rows: Number(r.rows),
          walBytes: Number(r.wal_bytes),
          walFpi: Number(r.wal_fpi),
          dirtied: Number(r.dirtied),
          toplevel: r.toplevel,
          server,
        });
      }
    } catch {
      this.statementsAvailable.set(server, false); // not preloaded on this server
    }
    return out;
  }
}

export function diffSnapshots(before: DbSnapshot, after: DbSnapshot, top = 20): DbDelta {
  const tables: Record<string, TableWrites> = {};
  let rowsWritten = 0;
  for (const [name, a] of Object.entries(after.tables)) {
    const b = before.tables[name] ?? { ins: 0, upd: 0, del: 0 };
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, del: a.del - b.del };
    if (d.ins + d.upd + d.del === 0) continue;
    tables[name] = d;
    rowsWritten += d.ins + d.upd + d.del;
  }
  const statements: StatementDelta[] = [];
  let clientStatements = 0;
  let serverStatements = 0;
  for (const [id, a] of after.statements) {
    const b = before.statements.get(id);
    const calls = a.calls - (b?.calls ?? 0);
    if (calls <= 0) continue;
    if (a.toplevel) {
      serverStatements += calls;
      if (a.server === 0) clientStatements += calls;
    }
    const totalMs = a.totalMs - (b?.totalMs ?? 0);
    statements.push({
      query: a.query.replace(/\s+/g, ' ').slice(0, 160),
      calls,
      totalMs,
      rows: a.rows - (b?.rows ?? 0),
      walBytes: a.walBytes - (b?.walBytes ?? 0),
      walFpi: a.walFpi - (b?.walFpi ?? 0),
      dirtied: a.dirtied - (b?.dirtied ?? 0),
      toplevel: a.toplevel,
      server: a.server,
      meanMs: totalMs / calls,
    });
  }
  statements.sort((x, y) => y.totalMs - x.totalMs);
  return {
    tables,
    rowsWritten,
    commits: after.commits - before.commits,
    topStatements: statements.slice(0, top),
    clientStatements,
    serverStatements,
  };
}

/**
 * Samples what the database's busy backends are doing every `intervalMs`: on CPU (no wait
 * event), or waiting on a lock, on WAL, on I/O, ... Idle connections are not counted; "idle in
 * transaction" ones are, as a state of their own (a transaction held open across round trips).
 */
export class WaitSampler {
  private readonly counts = new Map<string, number>();
  private samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  /** `admins`: a connection to each server of the database (the coordinator and workers). */
  constructor(
    private readonly admins: readonly Client[],
    private readonly database: string,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.counts.clear();
    this.samples = 0;
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
  }

  /** Stops and returns each activity's share of the backend samples (0..1), largest first. */
  stop(): { samples: number; shares: Record<string, number> } {
    clearInterval(this.timer);
    this.timer = undefined;
    const total = [...this.counts.values()].reduce((s, n) => s + n, 0);
    const shares: Record<string, number> = {};
    for (const [what, n] of [...this.counts].sort((a, b) => b[1] - a[1])) {
      shares[what] = total === 0 ? 0 : n / total;
    }
    return { samples: this.samples, shares };
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const results = await Promise.all(
        this.admins.map((admin) =>
          admin.query<{ what: string }>(
            `select case
            when state = 'idle in transaction' then 'idle in transaction'
            when wait_event_type is null then 'CPU'
            else wait_event_type || ':' || wait_event end as what
         from pg_stat_activity
         where datname = $1 and state <> 'idle' and pid <> pg_backend_pid()
           and backend_type = 'client backend'`,
            [this.database],
          ),
        ),
      );
      this.samples++;
      for (const { rows } of results) {
        for (const r of rows) this.counts.set(r.what, (this.counts.get(r.what) ?? 0) + 1);
      }
    } catch {
      // a sample lost to a busy server is just a sample
    } finally {
      this.busy = false;
    }
  }
}

/** Runs `fn` on a connection of its own to `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
