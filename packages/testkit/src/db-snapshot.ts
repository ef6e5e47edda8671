/**
 * A snapshot of a test database, taken while its clients stay connected, to put back later:
 * what restoring a backup does to the servers that use the database (issue 15, store epoch).
 * The copy is a database made with `CREATE DATABASE ... TEMPLATE`; putting it back drops the
 * database and creates it again from the copy, so it comes back as a new database (another
 * oid) with the old rows, under the same name.
 *
 * Copying needs the database to itself for a moment: connections to it are refused and the
 * open ones ended meanwhile (pools see their connections fail, and reconnect afterwards).
 *
 * @example
 * const snapshot = await snapshotDatabase(h.db);
 * // ... more traffic ...
 * await snapshot.restore(); // the database is as it was at the snapshot
 * await snapshot.drop();
 */
import { Client } from 'pg';
import type { TestDatabase } from './db';
import { uniqueDatabaseName } from './db';
import { waitFor } from './wait';

export interface DatabaseSnapshot {
  /** Name of the copy. */
  readonly name: string;
  /** Replaces the database with the copy (the copy stays, for another restore). */
  restore(): Promise<void>;
  /** Drops the copy. */
  drop(): Promise<void>;
}

export async function snapshotDatabase(
  db: Pick<TestDatabase, 'name'>,
  adminUrl: string | undefined = process.env['CHAT_TEST_PG_URL'],
): Promise<DatabaseSnapshot> {
  if (!adminUrl) throw new Error('CHAT_TEST_PG_URL is not set: no server to snapshot on');
  const name = uniqueDatabaseName('snap');
  await withAdmin(adminUrl, async (admin) => {
    const source = admin.escapeIdentifier(db.name);
    await admin.query(`ALTER DATABASE ${source} ALLOW_CONNECTIONS false`);
    try {
      // Ended backends take a moment to go ("source database is being accessed by other
      // users" meanwhile): retried until the template is free.
      await waitFor(async () => {
        await endConnections(admin, db.name);
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${source}`);
      }, 30_000);
    } finally {
      await admin.query(`ALTER DATABASE ${source} ALLOW_CONNECTIONS true`);
    }
  });
  return {
    name,
    restore: () =>
      withAdmin(adminUrl, async (admin) => {
        const target = admin.escapeIdentifier(db.name);
        await admin.query(`ALTER DATABASE ${target} ALLOW_CONNECTIONS false`);
        await admin.query(`DROP DATABASE ${target} WITH (FORCE)`);
        await admin.query(`CREATE DATABASE ${target} TEMPLATE ${admin.escapeIdentifier(name)}`);
      }),
    drop: () =>
      withAdmin(adminUrl, async (admin) => {
        await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
      }),
  };
}

async function endConnections(admin: Client, database: string): Promise<void> {
  await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE datname = $1 AND pid <> pg_backend_pid()`,
    [database],
  );
}

async function withAdmin<T>(adminUrl: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
