/**
 * `npm run migrate`: applies the store's migrations to DATABASE_URL.
 */
import { createDatabase } from './pool';
import { migrate } from './migrations';

async function main(): Promise<void> {
  const url = process.env['DATABASE_URL'];
  if (!url) {
    console.error('DATABASE_URL is not set (e.g. postgres://user:password@127.0.0.1:5432/chat)');
    process.exit(2);
  }
  const db = createDatabase(url, { maxConnections: 1, queryTimeoutMillis: 120_000 });
  try {
    const { results = [] } = await migrate(db);
    for (const r of results) console.log(`${r.status.toLowerCase()}: ${r.migrationName}`);
    if (results.length === 0) console.log('schema up to date');
  } finally {
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  console.error('migration failed:', err);
  process.exit(1);
});
