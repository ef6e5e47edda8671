/**
 * Push targets, the push outbox and the preview setting (issue 18; migration-push.ts). Every
 * statement a node runs for one user names that user (one user shard on Citus); only the
 * workers' scan for due rows and the operator figures read across shards, in their own
 * transaction (`acrossShards`), off the message path.
 *
 * Rows are leased before they are sent (`lease_until`): a node that claims a row owns it until
 * the lease ends or it reports the attempt, so two nodes that both think they own a user (a
 * moment of a ring change) do not both send it. A node that dies while holding a lease leaves
 * the row to be claimed again once the lease ends: a notification may go twice then, with the
 * same collapse id, which the device shows as one.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { PushTargetSpec } from '@chat/protocol';
import { ChatError } from '@chat/protocol';
import { toChatError } from './errors';
import type { Database } from './schema';
import { EngineRouters, acrossShards, onShard, perShard } from './shard-router';

/** One notification to queue: a message in `chatId` from `from` for a device of `userId`. */
export interface PushIntent {
  readonly deviceId: string;
  readonly chatId: string;
  readonly from: string;
}

/** A leased outbox row: what to send now. */
export interface ClaimedPush {
  readonly userId: string;
  readonly deviceId: string;
  readonly chatId: string;
  /** Messages this notification covers (the ones queued since the last one was sent). */
  readonly pending: number;
  readonly from: string | null;
  readonly attempts: number;
  readonly queuedAt: number;
}

/** What a worker needs to send a user's claimed rows. */
export interface PushRecipient {
  readonly previews: boolean;
  readonly targets: ReadonlyMap<string, PushTargetSpec>;
  /** Unread messages per device: message events above the device's cursor (capped). */
  readonly badges: ReadonlyMap<string, number>;
}

export interface OutboxStats {
  /** Rows with messages not yet notified. */
  readonly depth: number;
  /** When the oldest of them was queued (ms), null when none. */
  readonly oldestQueuedAt: number | null;
}

/** claimDue reads this many times its limit, to find a node's own rows among others'. */
const SCAN_FACTOR = 8;

/** The badge counts at most this many unread messages (an app shows "99+" long before). */
export const MAX_BADGE = 999;

interface OutboxRow {
  user_id: string;
  device_id: string;
  chat_id: string;
  pending: number;
  from_user: string | null;
  attempts: number;
  queued_at: string;
}

function claimed(row: OutboxRow): ClaimedPush {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    chatId: row.chat_id,
    pending: row.pending,
    from: row.from_user,
    attempts: row.attempts,
    queuedAt: Number(row.queued_at),
  };
}

/**
 * @example
 * const push = new PgPushStore(db);
 * await push.registerTarget('alice', 'phone', { kind: 'fcm', token: 'abc' }, Date.now());
 * await push.enqueue('alice', [{ deviceId: 'phone', chatId: 'c1', from: 'bob' }], Date.now(), 60_000);
 */
export class PgPushStore {
  private readonly routers: EngineRouters;

  constructor(private readonly db: Kysely<Database>) {
    this.routers = EngineRouters.of(db);
  }

  /** Stores the device's target, replacing the one it had. NOT_FOUND when the device is unknown. */
  async registerTarget(
    userId: string,
    deviceId: string,
    target: PushTargetSpec,
    now: number,
  ): Promise<void> {
    try {
      await sql`
        insert into push_targets (user_id, device_id, kind, target, updated_at)
        values (${userId}, ${deviceId}, ${target.kind}, ${JSON.stringify(target)}::jsonb, ${now})
        on conflict (user_id, device_id) do update
          set kind = excluded.kind, target = excluded.target, updated_at = excluded.updated_at`.execute(
        this.db,
      );
    } catch (err) {
      if ((err as { code?: unknown }).code === '23503') {
        throw new ChatError('NOT_FOUND', 'this device is not registered');
      }
      throw toChatError(err);
    }
  }

  /** Removes the device's target; true when it had one. */
  async removeTarget(userId: string, deviceId: string): Promise<boolean> {
    return this.wrap(async () => {
      const result = await sql`
        delete from push_targets where user_id = ${userId} and device_id = ${deviceId}`.execute(
        this.db,
      );
      return Number(result.numAffectedRows ?? 0) > 0;
    });
  }

  /**
   * Removes the device's target only if it is still `target`: a provider said it is gone, and
   * the device may have registered a new one meanwhile.
   */
  async removeGoneTarget(
    userId: string,
    deviceId: string,
    target: PushTargetSpec,
  ): Promise<boolean> {
    return this.wrap(async () => {
      const result = await sql`
        delete from push_targets
        where user_id = ${userId} and device_id = ${deviceId}
          and target = ${JSON.stringify(target)}::jsonb`.execute(this.db);
      return Number(result.numAffectedRows ?? 0) > 0;
    });
  }

  /** The user's targets by device. */
  async targetsOf(userId: string): Promise<Map<string, PushTargetSpec>> {
    return this.wrap(async () => {
      const { rows } = await sql<{ device_id: string; target: PushTargetSpec }>`
        select device_id, target from push_targets where user_id = ${userId}`.execute(this.db);
      return new Map(rows.map((r) => [r.device_id, r.target]));
    });
  }

  /** The targets by device of many users: one statement (per user shard on Citus). */
  async targetsOfUsers(
    userIds: readonly string[],
  ): Promise<Map<string, Map<string, PushTargetSpec>>> {
    const out = new Map<string, Map<string, PushTargetSpec>>();
    if (userIds.length === 0) return out;
    await this.wrap(async () => {
      const { users } = await this.routers.get();
      const rows = await perShard(
        users,
        [...new Set(userIds)],
        (u) => u,
        async (ids, keys) => {
          const result = await sql<{ user_id: string; device_id: string; target: PushTargetSpec }>`
          select user_id, device_id, target from push_targets
          where user_id = any(${ids}::text[])${onShard('user_id', keys)}`.execute(this.db);
          return result.rows;
        },
      );
      for (const r of rows) {
        const devices = out.get(r.user_id) ?? new Map<string, PushTargetSpec>();
        devices.set(r.device_id, r.target);
        out.set(r.user_id, devices);
      }
    });
    return out;
  }

  async previews(userId: string): Promise<boolean> {
    return this.wrap(async () => {
      const { rows } = await sql<{ v: boolean }>`
        select push_previews as v from users where id = ${userId}`.execute(this.db);
      return rows[0]?.v ?? false;
    });
  }

  async setPreviews(userId: string, previews: boolean): Promise<void> {
    await this.wrap(() =>
      // Connecting creates the row; the upsert only covers a user with no device yet.
      sql`
        insert into users (id, push_previews) values (${userId}, ${previews})
        on conflict (id) do update set push_previews = excluded.push_previews`.execute(this.db),
    );
  }

  /**
   * Queues notifications for devices of one user (one statement). Per device and chat, the
   * first message after a quiet window is due at once; later ones join it and are due when the
   * window since the last notification ends: at most one notification per window.
   */
  async enqueue(
    userId: string,
    intents: readonly PushIntent[],
    now: number,
    windowMs: number,
  ): Promise<void> {
    if (intents.length === 0) return;
    const byKey = new Map<string, { deviceId: string; chatId: string; from: string; n: number }>();
    for (const intent of intents) {
      const key = JSON.stringify([intent.deviceId, intent.chatId]);
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, { ...intent, n: 1 });
      else byKey.set(key, { ...seen, from: intent.from, n: seen.n + 1 });
    }
    // Plain VALUES (not INSERT ... SELECT): Citus routes it to the user's shard as it is.
    const rows = [...byKey.values()].map(
      (r) => sql`(${userId}, ${r.deviceId}, ${r.chatId}, ${r.n}, ${r.from}, ${now}, ${now})`,
    );
    await this.wrap(() =>
      sql`
        insert into push_outbox as o
          (user_id, device_id, chat_id, pending, from_user, queued_at, due_at)
        values ${sql.join(rows)}
        on conflict (user_id, device_id, chat_id) do update set
          pending = o.pending + excluded.pending,
          from_user = excluded.from_user,
          queued_at = case when o.pending = 0 then excluded.queued_at else o.queued_at end,
          due_at = case
            when o.pending > 0 then o.due_at
            else greatest(excluded.due_at, coalesce(o.last_sent_at + ${windowMs}::int8, 0))
          end`.execute(this.db),
    );
  }

  /**
   * Leases up to `limit` due rows of users `isOwned` accepts, for `leaseMs`. The scan reads
   * every shard, up to SCAN_FACTOR times `limit` rows (every node sees every user's due rows,
   * and keeps its own: a backlog spread over up to that many nodes still fills a node's batch);
   * each user's claim is one statement on its shard that takes only rows still due and not
   * leased, so two nodes never hold the same row.
   */
  async claimDue(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    isOwned: (userId: string) => boolean,
  ): Promise<ClaimedPush[]> {
    return this.wrap(async () => {
      const { rows: due } = await acrossShards(this.db, (tx) =>
        sql<{ user_id: string; device_id: string; chat_id: string }>`
          select user_id, device_id, chat_id from push_outbox
          where pending > 0 and due_at <= ${now} and lease_until <= ${now}
          order by due_at limit ${limit * SCAN_FACTOR}`.execute(tx),
      );
      const byUser = new Map<string, { devices: string[]; chats: string[] }>();
      let taken = 0;
      for (const row of due) {
        if (taken >= limit) break;
        if (!isOwned(row.user_id)) continue;
        taken += 1;
        let keys = byUser.get(row.user_id);
        if (keys === undefined) byUser.set(row.user_id, (keys = { devices: [], chats: [] }));
        keys.devices.push(row.device_id);
        keys.chats.push(row.chat_id);
      }
      const out: ClaimedPush[] = [];
      for (const [userId, keys] of byUser) {
        const { rows } = await sql<OutboxRow>`
          update push_outbox set lease_until = ${now + leaseMs}::int8, lease_owner = ${owner}
          where user_id = ${userId}
            and (device_id, chat_id) in (
              select * from unnest(${keys.devices}::text[], ${keys.chats}::text[]))
            and pending > 0 and due_at <= ${now} and lease_until <= ${now}
          returning user_id, device_id, chat_id, pending, from_user, attempts, queued_at`.execute(
          this.db,
        );
        for (const row of rows) out.push(claimed(row));
      }
      return out;
    });
  }

  /** The preview setting, targets and unread counts of one user, for sending its rows. */
  async recipient(userId: string): Promise<PushRecipient> {
    return this.wrap(async () => {
      const [previews, targets, { rows }] = await Promise.all([
        this.previews(userId),
        this.targetsOf(userId),
        sql<{ device_id: string; unread: number }>`
          select d.device_id,
            (select count(*)::int from (
               select 1 from inbox i
               where i.user_id = ${userId} and i.kind = 'message' and i.seq > d.acked_seq
               limit ${MAX_BADGE}) u) as unread
          from devices d where d.user_id = ${userId}`.execute(this.db),
      ]);
      return { previews, targets, badges: new Map(rows.map((r) => [r.device_id, r.unread])) };
    });
  }

  /**
   * The notification for `push` went (or will never go): the messages it covered are done, and
   * the next one for this device and chat waits for the window.
   */
  async sent(
    push: ClaimedPush,
    owner: string,
    now: number,
    windowMs: number,
    error?: string,
  ): Promise<void> {
    await this.wrap(() =>
      sql`
        update push_outbox set
          pending = greatest(pending - ${push.pending}, 0),
          last_sent_at = ${now}::int8, due_at = ${now + windowMs}::int8, queued_at = ${now}::int8,
          attempts = 0, last_error = ${error ?? null}, lease_until = 0, lease_owner = null
        where user_id = ${push.userId} and device_id = ${push.deviceId}
          and chat_id = ${push.chatId} and lease_owner = ${owner}`.execute(this.db),
    );
  }

  /** The attempt failed for now: try again at `dueAt`. */
  async retryAt(push: ClaimedPush, owner: string, dueAt: number, error: string): Promise<void> {
    await this.wrap(() =>
      sql`
        update push_outbox set
          attempts = attempts + 1, due_at = ${dueAt}::int8, last_error = ${error},
          lease_until = 0, lease_owner = null
        where user_id = ${push.userId} and device_id = ${push.deviceId}
          and chat_id = ${push.chatId} and lease_owner = ${owner}`.execute(this.db),
    );
  }

  /** Forgets rows with nothing pending whose window ended before `before` (across shards). */
  async pruneIdle(before: number): Promise<number> {
    return this.wrap(() =>
      acrossShards(this.db, async (tx) => {
        const result = await sql`
          delete from push_outbox where pending = 0 and due_at < ${before}`.execute(tx);
        return Number(result.numAffectedRows ?? 0);
      }),
    );
  }

  /** Queue depth and the oldest queued time, for metrics and `chatctl status` (across shards). */
  async stats(): Promise<OutboxStats> {
    return this.wrap(() =>
      acrossShards(this.db, async (tx) => {
        const { rows } = await sql<{ depth: number; oldest: string | null }>`
          select count(*)::int as depth, min(queued_at) as oldest
          from push_outbox where pending > 0`.execute(tx);
        const row = rows[0];
        return {
          depth: row?.depth ?? 0,
          oldestQueuedAt:
            row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
        };
      }),
    );
  }

  private async wrap<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toChatError(err);
    }
  }
}
