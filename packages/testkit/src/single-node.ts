/**
 * One chat node on a fresh database of the shared test Postgres: what most node tests need.
 * `sql` is a plain pg pool on the same database, for checking rows directly.
 */
import { Pool } from 'pg';
import type { TestDatabase } from './db';
import { createEngineTestDatabase } from './engine-db';
import type { NodeProcess, NodeProcessOptions } from './node-process';
import { startNodeProcess } from './node-process';

export interface SingleNode {
  node: NodeProcess;
  readonly db: TestDatabase;
  readonly sql: Pool;
  /** Starts the node again (after a kill) on a fresh port. */
  restart(): Promise<NodeProcess>;
  close(): Promise<void>;
}

export interface SingleNodeOptions extends Omit<NodeProcessOptions, 'databaseUrl'> {
  /** Superuser URL of the Postgres server to create the database on; the shared test server by default. */
  readonly adminUrl?: string;
}

export async function startSingleNode(options: SingleNodeOptions = {}): Promise<SingleNode> {
  const db = await createEngineTestDatabase(options.nodeId ?? 'node', options.adminUrl);
  const databaseUrl = db.url;
  const sql = new Pool({ connectionString: db.url, max: 2 });
  sql.on('error', () => undefined);
  const harness: SingleNode = {
    node: await startNodeProcess({ ...options, databaseUrl }),
    db,
    sql,
    async restart() {
      await harness.node.stop();
      harness.node = await startNodeProcess({ ...options, databaseUrl });
      return harness.node;
    },
    async close() {
      await harness.node.stop();
      await sql.end();
      await db.drop();
    },
  };
  return harness;
}

/** Reads one integer from a `SELECT count(*)`-style query. */
export async function countRows(sql: Pool, query: string, params: unknown[] = []): Promise<number> {
  const result = await sql.query<{ n: string }>(query, params);
  return Number(result.rows[0]?.n ?? 0);
}
