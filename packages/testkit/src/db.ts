/**
 * Per-test-file databases on the shared test server, so test files running in parallel never
 * see each other's rows.
 *
 * @example
 * const testDb = await createTestDatabase('store');
 * const db = createDatabase(testDb.url);
 * // ...
 * await db.destroy();
 * await testDb.drop();
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export interface TestDatabase {
  /** URL of the new, empty database. */
  readonly url: string;
  readonly name: string;
  /** Drops the database, terminating any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh, uniquely named database on the server of `adminUrl` (default: the shared
 * server of the jest run, CHAT_TEST_PG_URL).
 */
export async function createTestDatabase(
  prefix = 'test',
  adminUrl: string | undefined = process.env['CHAT_TEST_PG_URL'],
): Promise<TestDatabase> {
  if (!adminUrl) {
    throw new Error(
      'CHAT_TEST_PG_URL is not set: run through the jest `integration` project (its globalSetup starts Postgres) or set it to a superuser URL',
    );
  }
  const name = uniqueDatabaseName(prefix);
  await withAdmin(adminUrl, (client) =>
    client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`),
  );
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | null = null;
  return {
    url: url.toString(),
    name,
    drop: () => {
      dropped ??= withAdmin(adminUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
      ).then(() => undefined);
      return dropped;
    },
  };
}

/** A database name from `prefix` that no other test file picks (safe to use unquoted). */
export function uniqueDatabaseName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 30);
  return `${clean}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

async function withAdmin<T>(adminUrl: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // a dropped admin connection surfaces through the query
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
