/**
 * A Kysely instance over a pg Pool, configured so that a dead or paused Postgres produces
 * errors quickly instead of hung requests, and idle-connection errors never crash the process.
 */
import { Kysely, PostgresDialect } from 'kysely';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import { Pool } from 'pg';
import { ConnectionBrokenError, isConnectionError } from './errors';
import type { Database } from './schema';
import { StoreEpochChangedError } from './store-epoch';

/** The subset of a pino logger the store uses; a pino logger (or child) fits. */
export interface StoreLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: StoreLogger = Object.freeze({
  warn: () => undefined,
  error: () => undefined,
});

export interface DatabaseOptions {
  /** Most open connections (default 10). */
  readonly maxConnections?: number;
  /** Deadline to get a connection, from the pool or by connecting (default 10 000 ms). */
  readonly connectionTimeoutMillis?: number;
  /** Client-side deadline of one query (default 10 000 ms). */
  readonly queryTimeoutMillis?: number;
  /** Server-side statement_timeout (default: queryTimeoutMillis). */
  readonly statementTimeoutMillis?: number;
  /** A session idle inside a transaction this long is ended by the server (default 60 000 ms). */
  readonly idleInTransactionTimeoutMillis?: number;
  /** Idle connections are closed after this long (default 30 000 ms). */
  readonly idleTimeoutMillis?: number;
  /** `application_name` shown in pg_stat_activity (default `chat`). */
  readonly applicationName?: string;
  /**
   * More session settings, e.g. `{ 'citus.multi_task_query_log_level': 'error' }`: on Citus,
   * any statement of these connections that would run on more than one shard fails instead.
   */
  readonly sessionSettings?: Readonly<Record<string, string>>;
  /**
   * Runs once on every new connection, before anything else uses it (the node checks the store
   * epoch there: after a restore or failover every connection is new, so nothing of the node's
   * runs on the other database before it noticed). A throw refuses the connection: it is
   * closed, and the query that asked for it fails with that error.
   */
  readonly checkConnection?: (query: RawQuery) => Promise<void>;
  /**
   * The store epoch the caller runs under now (the node's StoreEpochWatch). A connection asked
   * for under one epoch and handed out under another is refused with StoreEpochChangedError:
   * a statement that waited in the pool while another connection found a restore began with
   * what the node knew of the replaced database (a cursor's seqs, a fan-out mark), and its
   * connection, new or not, would pass `checkConnection` once the change was handled.
   */
  readonly storeEpoch?: () => string | undefined;
  readonly logger?: StoreLogger;
}

/** Runs one statement on a raw connection and returns its rows. */
export type RawQuery = (text: string) => Promise<readonly Record<string, unknown>[]>;

/**
 * Creates the Kysely instance the store runs on. `db.destroy()` closes the pool.
 *
 * @example
 * const db = createDatabase(process.env.DATABASE_URL!, { maxConnections: 20, logger });
 * const store = new PgChatStore(db, { maxMembersPerChat: 100 });
 */
export function createDatabase(url: string, options: DatabaseOptions = {}): Kysely<Database> {
  const queryTimeout = options.queryTimeoutMillis ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const pool = new Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    // Waiting for a pooled connection counts too: under a burst the queue, not Postgres, is slow.
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    query_timeout: queryTimeout,
    statement_timeout: options.statementTimeoutMillis ?? queryTimeout,
    // A statement whose node died ends within a second instead of running on (and committing)
    // for nobody: with statement_timeout it bounds how long a dead node's writes may still land
    // (the fan-out sweep waits that long, see PgChatStore.start).
    options: [
      '-c client_connection_check_interval=1000',
      ...Object.entries(options.sessionSettings ?? {}).map(([k, v]) => `-c ${k}=${v}`),
    ].join(' '),
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMillis ?? 60_000,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 30_000,
    application_name: options.applicationName ?? 'chat',
    keepAlive: true,
  });
  // An idle client losing its connection (Postgres restarted, network cut) emits `error` on the
  // pool; without a listener that would be an uncaught exception.
  pool.on('error', (err) => logger.warn({ err }, 'idle postgres connection failed'));
  return new Kysely<Database>({
    dialect: new PostgresDialect({
      pool: new GuardedPool(pool, options.checkConnection, options.storeEpoch),
    }),
  });
}

/**
 * Hands out clients that are thrown away instead of reused once a query on them failed with a
 * connection error or timeout: after a client-side query timeout the connection may still be
 * busy with the abandoned query, and every later query on it (ROLLBACK included) would wait.
 */
class GuardedPool implements PostgresPool {
  /** Connections that passed `check` (pg-pool keeps one client object per connection). */
  private readonly checked = new WeakSet<object>();

  constructor(
    private readonly pool: Pool,
    private readonly check?: (query: RawQuery) => Promise<void>,
    private readonly storeEpoch?: () => string | undefined,
  ) {}

  get options(): object {
    return this.pool.options;
  }

  async connect(): Promise<PostgresPoolClient> {
    const askedUnder = this.storeEpoch?.();
    const client = await this.pool.connect();
    let broken = false;
    // pg-pool listens for errors of idle connections only. One the server ends while it is
    // checked out and no query of it is running (a restart, an administrator, a restore that
    // ends every connection) emits `error` with nobody listening, which would end the process.
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    const release = (destroy: boolean): void => {
      client.removeListener('error', onError);
      client.release(destroy || broken);
    };
    if (this.check !== undefined && !this.checked.has(client)) {
      try {
        await this.check(async (text) => (await client.query(text)).rows);
      } catch (err) {
        release(true);
        throw err;
      }
      this.checked.add(client);
    }
    const handedUnder = this.storeEpoch?.();
    if (askedUnder !== undefined && handedUnder !== askedUnder) {
      release(false);
      throw new StoreEpochChangedError(askedUnder, handedUnder ?? 'unknown');
    }
    const guarded: PostgresPoolClient = {
      query: ((...args: Parameters<PostgresPoolClient['query']>) => {
        if (broken) return Promise.reject(new ConnectionBrokenError('connection already failed'));
        const result = (client.query as (...a: unknown[]) => unknown)(...args);
        if (result instanceof Promise) {
          return result.catch((err: unknown) => {
            if (isConnectionError(err)) broken = true;
            throw err;
          });
        }
        return result; // a cursor
      }) as PostgresPoolClient['query'],
      release: (destroy?: boolean) => release(destroy === true),
    };
    return guarded;
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}
