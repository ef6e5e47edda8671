/**
 * The store's command line, on DATABASE_URL:
 *
 * - `npm run migrate` (or `npm run store -- migrate`): applies the migrations;
 * - `npm run store -- epoch`: prints the store epoch;
 * - `npm run store -- new-epoch`: gives the database a new store epoch, after a restore that
 *   does not change it by itself (store-epoch.ts); connected devices then resync.
 */
import type { Kysely } from 'kysely';
import { createDatabase } from './pool';
import { migrate } from './migrations';
import type { Database } from './schema';
import { newStoreEpoch, readStoreEpoch } from './store-epoch';

const COMMANDS: Readonly<Record<string, (db: Kysely<Database>) => Promise<void>>> = {
  async migrate(db) {
    const { results = [] } = await migrate(db);
    for (const r of results) console.log(`${r.status.toLowerCase()}: ${r.migrationName}`);
    if (results.length === 0) console.log('schema up to date');
  },
  async epoch(db) {
    console.log(await readStoreEpoch(db));
  },
  async 'new-epoch'(db) {
    const before = await readStoreEpoch(db);
    console.log(`store epoch ${before} -> ${await newStoreEpoch(db)}`);
  },
};

async function main(): Promise<void> {
  const name = process.argv[2] ?? 'migrate';
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`unknown command ${name}; one of: ${Object.keys(COMMANDS).join(', ')}`);
    process.exit(2);
  }
  const url = process.env['DATABASE_URL'];
  if (!url) {
    console.error('DATABASE_URL is not set (e.g. postgres://user:password@127.0.0.1:5432/chat)');
    process.exit(2);
  }
  const db = createDatabase(url, { maxConnections: 1, queryTimeoutMillis: 120_000 });
  try {
    await command(db);
  } finally {
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(`${process.argv[2] ?? 'migrate'} failed:`, err);
  process.exit(1);
});
