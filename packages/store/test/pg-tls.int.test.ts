/**
 * Postgres over TLS: a private server with ssl=on and a certificate from the local CA (for
 * 127.0.0.1). DATABASE_URL with `sslmode=verify-full&sslrootcert=<ca>` connects encrypted;
 * a server whose certificate another CA signed, or that is issued for another name, is refused.
 */
import { sql } from 'kysely';
import { createLocalCa, createLocalTls, startPostgres, writePemPair } from '@chat/testkit';
import type { LocalTls, PostgresHandle } from '@chat/testkit';
import { createDatabase } from '../src/index';

let tls: LocalTls;
let pg: PostgresHandle;
let wrongCaFile: string;
let otherNamePg: PostgresHandle;

beforeAll(async () => {
  tls = await createLocalTls();
  wrongCaFile = (await writePemPair(tls.dir, 'wrong-ca', await createLocalCa('wrong CA'))).cert;
  [pg, otherNamePg] = await Promise.all([
    startPostgres({ tls: await tls.ca.issue('postgres', ['127.0.0.1']) }),
    startPostgres({ tls: await tls.ca.issue('db.example', ['db.example']) }),
  ]);
}, 180_000);
afterAll(async () => {
  await Promise.allSettled([pg?.close(), otherNamePg?.close()]);
  await tls?.close();
});

function withTls(url: string, params: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${params}`;
}

/** Whether the session that runs the query is encrypted, as the server sees it. */
async function sessionSsl(url: string): Promise<boolean> {
  const db = createDatabase(url, { maxConnections: 1, connectionTimeoutMillis: 5_000 });
  try {
    const { rows } = await sql<{ ssl: boolean }>`
      select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(db);
    return rows[0]!.ssl;
  } finally {
    await db.destroy();
  }
}

it('connects encrypted with sslmode=verify-full and the CA as sslrootcert', async () => {
  const url = withTls(pg.url, `sslmode=verify-full&sslrootcert=${tls.caFile}`);
  expect(await sessionSsl(url)).toBe(true);
  // Without it node-postgres does not ask for TLS at all.
  expect(await sessionSsl(pg.url)).toBe(false);
});

it('refuses a server whose certificate another CA signed', async () => {
  const url = withTls(pg.url, `sslmode=verify-full&sslrootcert=${wrongCaFile}`);
  await expect(sessionSsl(url)).rejects.toThrow(/certificate|verify/i);
});

it('refuses a server whose certificate names another host', async () => {
  const url = withTls(otherNamePg.url, `sslmode=verify-full&sslrootcert=${tls.caFile}`);
  await expect(sessionSsl(url)).rejects.toThrow(/altnames|IP: 127\.0\.0\.1/i);
});
