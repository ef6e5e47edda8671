/**
 * Migration 0015_expired_seq (issue 20): `users.expired_seq`, the highest of the user's inbox
 * seqs that retention deleted by age. A device whose cursor is below it missed events that are
 * gone for good, and its next `welcome` says so (`reset: true`), as for a device retention
 * removed: away less than the retention period, it may still have held events older than it.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const expiredSeqMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`alter table users add column expired_seq bigint not null default 0`.execute(db);
  },
  async down(): Promise<void> {
    throw new Error('0015_expired_seq cannot be undone: restore a backup instead');
  },
};
