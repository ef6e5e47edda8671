/**
 * The database under a durable benchmark: the embedded PostgreSQL (default), or Citus, a
 * coordinator and two workers of Debian's PostgreSQL 15 (`--citus`; scripts/ensure-citus.sh
 * builds it when missing). Every server preloads pg_stat_statements, keeps fsync and
 * synchronous_commit on, and is measured: its statistics and the CPU of its process tree.
 */
import { Client } from 'pg';
import {
  createCitusTestDatabase,
  createTestDatabase,
  startCitus,
  startPostgres,
} from '@chat/testkit';
import type { CitusTopology, TestDatabase } from '@chat/testkit';
import { parentPid, treeCpuSeconds } from './procstat';

export type BenchEngine = 'postgres' | 'citus';

export interface StorageServer {
  /** An admin connection to the server's `postgres` database. */
  readonly admin: Client;
  /** Superuser URL of the server's `postgres` database. */
  readonly url: string;
  readonly postmasterPid: number;
}

export interface BenchStorage {
  readonly engine: BenchEngine;
  /** Where the chat nodes' databases are made (plain) ... */
  readonly adminUrl: string;
  /** ... or the Citus cluster they are made on. */
  readonly citus: CitusTopology | undefined;
  /** The server clients connect to first (the coordinator on Citus), then the workers. */
  readonly servers: readonly StorageServer[];
  readonly version: string;
  readonly fsync: string;
  /** A fresh database for the chat nodes. */
  createDatabase(prefix: string): Promise<TestDatabase>;
  /** The URL of database `name` on each server, in `servers` order. */
  urlsOf(name: string): string[];
  /** CPU seconds used so far by every server's processes. */
  cpuSeconds(): number;
  /** The same per server, in `servers` order. */
  cpuSecondsByServer(): number[];
  close(): Promise<void>;
}

const STATEMENT_SETTINGS = {
  'pg_stat_statements.max': '1000',
  'pg_stat_statements.track': 'all',
};

async function connectServer(url: string): Promise<StorageServer> {
  const admin = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  admin.on('error', () => undefined);
  await admin.connect();
  const { rows } = await admin.query<{ pid: number }>('select pg_backend_pid() as pid');
  const pid = parentPid(rows[0]!.pid);
  if (pid === null) throw new Error(`cannot find the postmaster of ${url}`);
  return { admin, url, postmasterPid: pid };
}

function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function startBenchStorage(engine: BenchEngine): Promise<BenchStorage> {
  let close: () => Promise<void>;
  let urls: string[];
  let citus: CitusTopology | undefined;
  if (engine === 'citus') {
    const cluster = await startCitus({
      workers: 2,
      settings: { shared_preload_libraries: "'citus,pg_stat_statements'", ...STATEMENT_SETTINGS },
    });
    close = () => cluster.close();
    urls = [cluster.coordinator.url, ...cluster.workers.map((w) => w.url)];
    citus = {
      coordinatorPort: cluster.coordinator.port,
      workerPorts: cluster.workers.map((w) => w.port),
    };
  } else {
    const pg = await startPostgres({
      settings: { shared_preload_libraries: 'pg_stat_statements', ...STATEMENT_SETTINGS },
    });
    close = () => pg.close();
    urls = [pg.url];
  }
  const servers: StorageServer[] = [];
  try {
    for (const url of urls) servers.push(await connectServer(url));
    const { rows } = await servers[0]!.admin.query<{ version: string; fsync: string }>(
      `select version() as version, current_setting('fsync') as fsync`,
    );
    return {
      engine,
      adminUrl: urls[0]!,
      citus,
      servers,
      version: rows[0]!.version,
      fsync: rows[0]!.fsync,
      createDatabase: (prefix) =>
        citus === undefined
          ? createTestDatabase(prefix, urls[0])
          : createCitusTestDatabase(prefix, citus),
      urlsOf: (name) => urls.map((u) => withDatabase(u, name)),
      cpuSeconds: () => servers.reduce((sum, s) => sum + treeCpuSeconds(s.postmasterPid), 0),
      cpuSecondsByServer: () => servers.map((s) => treeCpuSeconds(s.postmasterPid)),
      close: async () => {
        await Promise.all(servers.map((s) => s.admin.end().catch(() => undefined)));
        await close();
      },
    };
  } catch (err) {
    await Promise.all(servers.map((s) => s.admin.end().catch(() => undefined)));
    await close();
    throw err;
  }
}

/** Rows of `table` per shard (Citus): how evenly the keys spread. */
export async function rowsPerShard(
  coordinatorDbUrl: string,
  table: string,
): Promise<{ shards: number; min: number; median: number; max: number }> {
  const client = new Client({ connectionString: coordinatorDbUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ result: string }>(
      `select result from run_command_on_shards($1, 'select count(*) from %s')`,
      [table],
    );
    const counts = rows.map((r) => Number(r.result)).sort((a, b) => a - b);
    return {
      shards: counts.length,
      min: counts[0] ?? 0,
      median: counts[Math.floor(counts.length / 2)] ?? 0,
      max: counts.at(-1) ?? 0,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
