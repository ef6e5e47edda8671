/**
 * The database server's clock: the one clock every node shares, for decisions that must not
 * depend on which node makes them (when a retention pass counts from; see README "Behaviour
 * worth knowing", clocks).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { toChatError } from './errors';

/**
 * Milliseconds since the epoch by the database server's clock, now (not at transaction start).
 *
 * @example
 * const now = await databaseTime(db);
 */
export async function databaseTime<DB>(db: Kysely<DB>): Promise<number> {
  try {
    const { rows } = await sql<{
      now: string;
    }>`select (extract(epoch from clock_timestamp()) * 1000)::int8 as now`.execute(db);
    return Number(rows[0]!.now);
  } catch (err) {
    throw toChatError(err);
  }
}
