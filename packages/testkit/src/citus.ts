/**
 * A throwaway Citus cluster (a coordinator and workers, each a PostgreSQL 15 server with the
 * citus extension) on free loopback ports, for the Citus tier of the tests and local runs.
 * Citus is in neither Debian's packages nor npm: `scripts/ensure-citus.sh` builds it into
 * Debian's PostgreSQL 15 (the test command runs it first). Crash safety stays on (fsync,
 * synchronous_commit, full_page_writes are PostgreSQL's defaults and are not touched).
 *
 * As root the servers run as the `postgres` OS user (Debian's postgresql-15 package creates it),
 * with their data under a temp dir that user owns.
 *
 * @example
 * const citus = await startCitus({ workers: 2 });
 * const db = createDatabase(citus.url); // the coordinator
 * const port = await citus.addWorker(); // a third worker, empty until shards are moved onto it
 * await citus.crash(citus.workers[0]!); // SIGKILL: the next start() runs crash recovery
 * await citus.start(citus.workers[0]!);
 * await citus.close();
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { uniqueDatabaseName } from './db';
import type { TestDatabase } from './db';
import { freePort } from './free-port';
import { continueTree, killTreeAndWait, stopTree } from './process-tree';

const run = promisify(execFile);

/** Where Debian's PostgreSQL 15 keeps its programs (override with CITUS_PG_BINDIR). */
export const CITUS_PG_BINDIR = process.env['CITUS_PG_BINDIR'] ?? '/usr/lib/postgresql/15/bin';

export interface CitusServer {
  readonly port: number;
  /** Superuser URL of its `postgres` database. */
  readonly url: string;
  readonly dataDir: string;
}

export interface CitusHandle {
  /** Superuser URL of the coordinator's `postgres` database: what applications connect to. */
  readonly url: string;
  readonly coordinator: CitusServer;
  readonly workers: readonly CitusServer[];
  /** Starts one more worker and adds it to the cluster (no shards until a rebalance). */
  addWorker(): Promise<CitusServer>;
  /**
   * SIGKILLs a server's postmaster and waits until its processes are gone: no shutdown
   * checkpoint, so the next `start()` runs crash recovery. Its connections die without a reply.
   */
  crash(server: CitusServer): Promise<void>;
  /** Starts a crashed server again on its port. */
  start(server: CitusServer): Promise<void>;
  /**
   * SIGSTOPs a server's postmaster and every process it started: connections stay open and
   * queries hang, new connections are accepted by the kernel but never answered.
   */
  freeze(server: CitusServer): Promise<void>;
  /** Resumes a frozen server (nothing to do when it is not frozen). */
  thaw(server: CitusServer): Promise<void>;
  /** Stops every server and deletes their data. */
  close(): Promise<void>;
}

export interface CitusOptions {
  /** Workers besides the coordinator (default 2). */
  readonly workers?: number;
  /** Extra postgresql.conf settings for every server. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** Whether Citus is installed where the harness looks for it. */
export function citusInstalled(): boolean {
  return (
    existsSync(join(CITUS_PG_BINDIR, 'pg_ctl')) &&
    existsSync(join(CITUS_PG_BINDIR, '..', 'lib', 'citus.so'))
  );
}

export async function startCitus(options: CitusOptions = {}): Promise<CitusHandle> {
  if (!citusInstalled()) {
    throw new Error(
      `Citus is not installed into PostgreSQL 15 at ${CITUS_PG_BINDIR}: run scripts/ensure-citus.sh`,
    );
  }
  const root = await mkdtemp(join(tmpdir(), 'chat-citus-'));
  const owner = await postgresOwner();
  if (owner !== null) await chown(root, owner.uid, owner.gid);
  const servers: CitusServer[] = [];
  const watchdog = startWatchdog(root, owner !== null);
  const startServer = async (name: string): Promise<CitusServer> => {
    // Told before the server starts: should this process die meanwhile, it is stopped too.
    watchdog.stdin.write(`${join(root, name)}\n`);
    const server = await initAndStart(root, name, owner, options.settings ?? {});
    servers.push(server);
    return server;
  };
  /** The processes freeze() stopped, by data dir. */
  const frozen = new Map<string, number[]>();
  /** Data dirs of servers crash() killed and start() has not started again. */
  const crashed = new Set<string>();
  const thaw = (server: CitusServer): void => {
    continueTree(frozen.get(server.dataDir) ?? []);
    frozen.delete(server.dataDir);
  };
  try {
    const coordinator = await startServer('coordinator');
    const workers: CitusServer[] = [];
    for (let i = 1; i <= (options.workers ?? 2); i++)
      workers.push(await startServer(`worker-${i}`));
    await query(
      coordinator.url,
      `select citus_set_coordinator_host('127.0.0.1', ${coordinator.port})`,
    );
    for (const w of workers) await addNode(coordinator, w);
    return {
      url: coordinator.url,
      coordinator,
      workers,
      addWorker: async () => {
        const w = await startServer(`worker-${workers.length + 1}`);
        await addNode(coordinator, w);
        workers.push(w);
        return w;
      },
      crash: async (server) => {
        thaw(server);
        await killTreeAndWait(await postmasterPid(server));
        crashed.add(server.dataDir);
      },
      start: async (server) => {
        const log = join(server.dataDir, 'log');
        await pgProgram(owner, 'pg_ctl', ['-D', server.dataDir, '-l', log, '-w', 'start']);
        crashed.delete(server.dataDir);
      },
      freeze: async (server) => {
        if (!frozen.has(server.dataDir))
          frozen.set(server.dataDir, stopTree(await postmasterPid(server)));
      },
      thaw: async (server) => thaw(server),
      close: async () => {
        for (const server of servers) thaw(server); // a stopped server would not hear the stop
        const running = servers.filter((s) => !crashed.has(s.dataDir));
        await Promise.all(running.map((s) => stopServer(s, owner)));
        await rm(root, { recursive: true, force: true });
        watchdog.stdin.end();
      },
    };
  } catch (err) {
    await Promise.all(servers.map((s) => stopServer(s, owner).catch(() => undefined)));
    await rm(root, { recursive: true, force: true });
    watchdog.stdin.end();
    throw err;
  }
}

const WATCHDOG_SCRIPT = resolve(__dirname, 'citus-watchdog.ts');
const REPO_ROOT = resolve(__dirname, '../../..');

/** The child that stops the servers if this process dies first (see citus-watchdog.ts). */
function startWatchdog(root: string, asPostgres: boolean): ChildProcess & { stdin: Writable } {
  // `--import tsx` resolves tsx from the working directory: run from the repository root.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', WATCHDOG_SCRIPT, root, CITUS_PG_BINDIR, asPostgres ? '1' : '0'],
    { cwd: REPO_ROOT, stdio: ['pipe', 'ignore', 'inherit'] },
  );
  // Jest waits for open handles: the watchdog must not keep this process alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child as ChildProcess & { stdin: Writable };
}

/** Where the jest `citus` project's cluster is (see jest-citus-setup.ts). */
export const CITUS_ENV = 'CHAT_TEST_CITUS';

/** What a test process needs to know of the run's Citus cluster (JSON in CHAT_TEST_CITUS). */
export interface CitusTopology {
  readonly coordinatorPort: number;
  readonly workerPorts: readonly number[];
}

export function topologyOf(handle: CitusHandle): CitusTopology {
  return {
    coordinatorPort: handle.coordinator.port,
    workerPorts: handle.workers.map((w) => w.port),
  };
}

/**
 * A fresh database on the run's Citus cluster (a Citus cluster is per database: the database
 * is created on every node with the extension, and its coordinator is told the workers), so
 * test files running in parallel never see each other's rows.
 */
export async function createCitusTestDatabase(
  prefix = 'test',
  topology: CitusTopology = readTopology(),
): Promise<TestDatabase> {
  const name = uniqueDatabaseName(prefix);
  const ports = [topology.coordinatorPort, ...topology.workerPorts];
  const urlOf = (port: number, database: string): string =>
    `postgres://postgres@127.0.0.1:${port}/${database}`;
  for (const port of ports) {
    await query(urlOf(port, 'postgres'), `create database ${name}`);
    await query(urlOf(port, name), 'create extension citus');
  }
  const url = urlOf(topology.coordinatorPort, name);
  await query(url, `select citus_set_coordinator_host('127.0.0.1', ${topology.coordinatorPort})`);
  for (const port of topology.workerPorts) {
    await query(url, `select citus_add_node('127.0.0.1', ${port})`);
  }
  let dropped: Promise<void> | null = null;
  return {
    url,
    name,
    drop: () => {
      dropped ??= (async () => {
        for (const port of ports) {
          await query(urlOf(port, 'postgres'), `drop database if exists ${name} with (force)`);
        }
      })();
      return dropped;
    },
  };
}

function readTopology(): CitusTopology {
  const json = process.env[CITUS_ENV];
  if (json === undefined || json === '') {
    throw new Error(
      `${CITUS_ENV} is not set: run through the jest \`citus\` project (its globalSetup starts a Citus cluster)`,
    );
  }
  return JSON.parse(json) as CitusTopology;
}

async function addNode(coordinator: CitusServer, worker: CitusServer): Promise<void> {
  await query(coordinator.url, `select citus_add_node('127.0.0.1', ${worker.port})`);
}

interface Owner {
  readonly uid: number;
  readonly gid: number;
}

async function postgresOwner(): Promise<Owner | null> {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'running as root, but there is no `postgres` OS user to run PostgreSQL as (scripts/ensure-citus.sh installs postgresql-15, which creates it)',
    );
  }
}

/** Runs a PostgreSQL program, as the `postgres` user when we are root. */
async function pgProgram(owner: Owner | null, program: string, args: string[]): Promise<void> {
  const path = join(CITUS_PG_BINDIR, program);
  const [file, argv] =
    owner === null ? [path, args] : ['runuser', ['-u', 'postgres', '--', path, ...args]];
  try {
    await run(file, argv, { timeout: 120_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${program} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

async function initAndStart(
  root: string,
  name: string,
  owner: Owner | null,
  settings: Readonly<Record<string, string>>,
): Promise<CitusServer> {
  const dataDir = join(root, name);
  const port = await freePort();
  await pgProgram(owner, 'initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  const conf: Record<string, string> = {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dataDir}'`,
    shared_preload_libraries: "'citus'",
    max_connections: '300',
    ...settings,
  };
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(''),
  );
  await pgProgram(owner, 'pg_ctl', ['-D', dataDir, '-l', join(dataDir, 'log'), '-w', 'start']);
  const server = { port, url: `postgres://postgres@127.0.0.1:${port}/postgres`, dataDir };
  await query(server.url, 'create extension if not exists citus');
  return server;
}

/** The postmaster's pid: the first line of postmaster.pid in its data dir. */
async function postmasterPid(server: CitusServer): Promise<number> {
  const text = await readFile(join(server.dataDir, 'postmaster.pid'), 'utf8');
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${server.dataDir}`);
  return pid;
}

async function stopServer(server: CitusServer, owner: Owner | null): Promise<void> {
  if (!existsSync(join(server.dataDir, 'postmaster.pid'))) return;
  await pgProgram(owner, 'pg_ctl', ['-D', server.dataDir, '-m', 'immediate', '-w', 'stop']);
}

async function query(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
