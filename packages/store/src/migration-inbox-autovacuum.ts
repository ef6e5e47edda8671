/**
 * Migration 0017_inbox_autovacuum (issue 20): the inbox is a queue (every event is deleted once
 * its devices acked it, seconds after it was appended), so its dead rows come at the rate of the
 * traffic while its live rows stay few. Autovacuum's default trigger, 20 % of the live rows dead,
 * is then a handful of rows, but the table waits its turn behind the large ones, and on Citus
 * each of its shards does; the soak saw a Citus inbox go 11 minutes unvacuumed while its heap
 * grew. A fixed trigger (500 dead rows) and no cost delay make its vacuums prompt and short (a
 * small table: there is little to throttle). ALTER TABLE ... SET reaches every shard on Citus.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const inboxAutovacuumMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      alter table inbox set (
        autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_threshold = 500,
        autovacuum_vacuum_cost_delay = 0
      )`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`
      alter table inbox reset (
        autovacuum_vacuum_scale_factor,
        autovacuum_vacuum_threshold,
        autovacuum_vacuum_cost_delay
      )`.execute(db);
  },
};
