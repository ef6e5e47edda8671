/**
 * Migration 0014_push (issue 18): push targets, the push outbox and the preview setting, all
 * keyed by user (on Citus distributed by user_id and co-located with users and devices, so a
 * user's targets, outbox rows, devices and inbox share a shard).
 *
 * - `push_targets`: one per device (what the device registered last), removed with the device.
 * - `push_outbox`: one row per device and chat (the coalescing key): `pending` messages not
 *   notified yet, `due_at` when the next notification may go, `last_sent_at` for the window,
 *   `attempts`/`last_error` for retries, `lease_until`/`lease_owner` so that one node sends a
 *   row at a time. Removed with the device too.
 * - `users.push_previews`: notifications name the sender only when true (false by default).
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { detectEngine } from './citus';

export const pushMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const run = (statement: string): Promise<unknown> => sql.raw(statement).execute(db);
    await run(`
      create table push_targets (
        user_id text not null,
        device_id text not null,
        kind text not null check (kind in ('apns', 'fcm', 'webpush')),
        target jsonb not null,
        updated_at bigint not null,
        primary key (user_id, device_id),
        foreign key (user_id, device_id) references devices (user_id, device_id) on delete cascade
      )`);
    await run(`
      create table push_outbox (
        user_id text not null,
        device_id text not null,
        chat_id text not null,
        pending int not null default 0,
        from_user text,
        queued_at bigint not null,
        due_at bigint not null,
        last_sent_at bigint,
        attempts int not null default 0,
        last_error text,
        lease_until bigint not null default 0,
        lease_owner text,
        primary key (user_id, device_id, chat_id),
        foreign key (user_id, device_id) references devices (user_id, device_id) on delete cascade
      )`);
    // The workers' scan: rows with something to send, oldest due first.
    await run(`create index push_outbox_due_idx on push_outbox (due_at) where pending > 0`);
    await run(`alter table users add column push_previews boolean not null default false`);
    if ((await detectEngine(db)) === 'citus') {
      for (const table of ['push_targets', 'push_outbox']) {
        await sql`select create_distributed_table(${table}, 'user_id', colocate_with => 'users')`.execute(
          db,
        );
      }
    }
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`drop table if exists push_outbox`.execute(db);
    await sql`drop table if exists push_targets`.execute(db);
    await sql`alter table users drop column if exists push_previews`.execute(db);
  },
};
