/**
 * Migration 0011_blocks (issue 16): blocking and the last-seen visibility setting.
 *
 * - `user_blocks`: who blocked whom, keyed by the blocker (on Citus distributed by user_id and
 *   co-located with users, so a user's blocks, settings and chat list share a shard).
 * - `users.last_seen_visibility`: 'everyone', 'contacts' (the default, as before) or 'nobody'.
 * - `chat_members.blocked_by`: per chat, the members who blocked this member (block-marks.ts),
 *   so that the chat step refuses a blocked sender from the chat's own rows, with a partial
 *   index that holds only marked rows.
 * - the chat step again, with that check.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { detectEngine } from './citus';
import { recreateChatStep } from './migration-distribute';

export const blocksMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const run = (statement: string): Promise<unknown> => sql.raw(statement).execute(db);
    await run(`
      create table user_blocks (
        user_id text not null,
        blocked_id text not null,
        created_at bigint not null,
        primary key (user_id, blocked_id)
      )`);
    if ((await detectEngine(db)) === 'citus') {
      await sql`select create_distributed_table('user_blocks', 'user_id', colocate_with => 'users')`.execute(
        db,
      );
    }
    // Two statements: Citus adds no column together with a constraint.
    await run(`
      alter table users add column last_seen_visibility text not null default 'contacts'`);
    await run(`
      alter table users add constraint users_last_seen_visibility_check
        check (last_seen_visibility in ('everyone', 'contacts', 'nobody'))`);
    await run(`alter table chat_members add column blocked_by text[] not null default '{}'`);
    await run(`
      create index chat_members_blocked_idx on chat_members (chat_id) where blocked_by <> '{}'`);
    await recreateChatStep(db);
  },
  async down(): Promise<void> {
    throw new Error('0011_blocks cannot be undone: restore a backup instead');
  },
};
