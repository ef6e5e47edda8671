/**
 * The store epoch (issue 15): a short opaque string that changes when the database is no longer
 * the one whose history the clients have seen, because it was restored from a backup or failed
 * over to a replica that may have lost writes. A user's sequence numbers continue from what the
 * database has, so after such a change they are handed out again for other events; clients
 * that see a new epoch in `welcome` resync instead of dropping those events as duplicates.
 *
 * It is derived, in the database, from what each kind of restore changes:
 *
 * - the cluster's system identifier (a different server: a dump restored elsewhere, a new
 *   cluster built by pg_upgrade or a logical copy);
 * - the current WAL timeline (a replica promoted, a point-in-time recovery);
 * - the database's oid (a database dropped and restored, or copied from a template);
 * - the oid of the `store_epoch` table (a dump restored into the existing database with
 *   `pg_restore --clean` drops and creates it again);
 * - a random token in that table, which an operator changes (`npm run store -- new-epoch`)
 *   after any other kind of restore, such as a file-system snapshot of the data directory.
 *
 * On Citus these are the coordinator's: a worker restored on its own needs `new-epoch`.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { detectEngine } from './citus';
import { ConnectionBrokenError } from './errors';
import type { RawQuery } from './pool';

/** Thrown for a fresh connection that found another epoch than the one the node runs under. */
export class StoreEpochChangedError extends ConnectionBrokenError {
  constructor(
    readonly previous: string,
    readonly current: string,
  ) {
    super(`store epoch changed from ${previous} to ${current}`);
  }
}

const EPOCH_QUERY = 'select chat_store_epoch() as epoch';

/**
 * The function the epoch is read with. `security definer` so that it gives every caller the
 * same answer whatever their own rights (a source the owner may not read counts as empty,
 * for everybody); its search_path is pinned, and the table named with its schema.
 */
function epochFunction(schema: string): string {
  const table = `${quoteIdent(schema)}.store_epoch`;
  return `
    create or replace function chat_store_epoch() returns text
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
    declare
      v_system text := '';
      v_timeline text := '';
      v_token text;
    begin
      begin
        select system_identifier::text into v_system from pg_control_system();
      exception when insufficient_privilege or undefined_function then
        v_system := '';
      end;
      -- The timeline of the WAL being written now: a promotion shows at once, where the
      -- checkpoint's timeline would follow only at the next checkpoint.
      begin
        v_timeline := substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8);
      exception when insufficient_privilege or undefined_function
          or object_not_in_prerequisite_state then
        begin
          select upper(lpad(to_hex(timeline_id), 8, '0')) into v_timeline
          from pg_control_checkpoint();
        exception when insufficient_privilege or undefined_function then
          v_timeline := '';
        end;
      end;
      select token into v_token from ${table} where id = 1;
      return substr(md5(concat_ws(':', v_system, v_timeline,
        (select oid from pg_database where datname = current_database())::text,
        ${quoteLiteral(table)}::regclass::oid::text, coalesce(v_token, ''))), 1, 16);
    end
    $fn$`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * Migration 0009_store_epoch: the one-row `store_epoch` table (a reference table on Citus, so
 * every node can read it on any connection) and `chat_store_epoch()`.
 */
export const storeEpochMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      create table store_epoch (
        id int primary key default 1 check (id = 1),
        token text not null,
        changed_at int8 not null
      )`.execute(db);
    if ((await detectEngine(db)) === 'citus') {
      await sql`select create_reference_table('store_epoch')`.execute(db);
    }
    // The token comes from here, not from a volatile function: Citus refuses those in writes
    // to a reference table (each copy would get another value).
    await sql`
      insert into store_epoch (id, token, changed_at) values (1, ${randomUUID()}, ${Date.now()})`.execute(
      db,
    );
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    await sql.raw(epochFunction(rows[0]?.schema ?? 'public')).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`drop function if exists chat_store_epoch()`.execute(db);
    await sql`drop table if exists store_epoch`.execute(db);
  },
};

/**
 * The database's store epoch now.
 *
 * @example
 * const epoch = await readStoreEpoch(db); // '3f9c0a41d2b7e615'
 */
export async function readStoreEpoch<DB>(db: Kysely<DB>): Promise<string> {
  const { rows } = await sql<{ epoch: string }>`select chat_store_epoch() as epoch`.execute(db);
  return epochOf(rows);
}

/** The same on a raw connection (the pool's `checkConnection` hook gets one). */
export async function readStoreEpochWith(query: RawQuery): Promise<string> {
  return epochOf(await query(EPOCH_QUERY));
}

function epochOf(rows: readonly Record<string, unknown>[]): string {
  const epoch = rows[0]?.['epoch'];
  if (typeof epoch !== 'string' || epoch === '') {
    throw new Error('chat_store_epoch() returned no epoch');
  }
  return epoch;
}

/**
 * Gives the database a new epoch: for restores that change none of what the epoch is derived
 * from (a file-system snapshot put back, rows copied into the same database). Every node
 * notices within its check interval and sends its devices to resync. Returns the new epoch.
 *
 * @example
 * await newStoreEpoch(db); // after restoring a volume snapshot
 */
export async function newStoreEpoch<DB>(db: Kysely<DB>, now = Date.now()): Promise<string> {
  await sql`update store_epoch set token = ${randomUUID()}, changed_at = ${now}
    where id = 1`.execute(db);
  return readStoreEpoch(db);
}
