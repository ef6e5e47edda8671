/**
 * Device registration at welcome, batched. Every connect registers its user and device and
 * reads the user's latest seq; as one round trip per connect this capped welcomes at a few
 * hundred per second per node (each statement wakes a Postgres backend), which is what slowed
 * reconnect storms and rebalance drains and saturated a new node's pool. Connects that arrive
 * while earlier statements run are registered together in ONE statement (see BatchQueue).
 */
import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';
import { ChatError } from '@chat/protocol';
import { BatchQueue } from './batch-queue';
import type { BatchInfo } from './batch-queue';
import { latestSeq } from './cursors';
import { WHOLE_BATCH, onShard, perShard } from './shard-router';
import type { KeyRouter } from './shard-router';
import { toChatError } from './errors';
import type { Database } from './schema';
import type { DeviceOptions, DeviceState, ReceiptMark } from './types';

export interface DeviceConnectorOptions {
  /** Most devices registered by one statement (default 500). */
  readonly maxBatchSize?: number;
  /** Most statements in flight at once (default 2). */
  readonly maxConcurrent?: number;
  /**
   * Most registrations waiting for a statement (default 5000): past it a connect is refused at
   * once with UNAVAILABLE (the node closes with 1013, the client reconnects later), so a hung
   * Postgres does not pile up connects in memory.
   */
  readonly maxQueued?: number;
  /**
   * A moving device is read instead of registered only if it was active within this long
   * (default MOVING_FRESH_MS): its `last_active`, which retention judges, is not moved on by
   * the read, so keep it well below the device retention period.
   */
  readonly movingFreshMs?: number;
  /** Called after each statement, for metrics (kind `connect`, or `connect-read` for moves). */
  readonly onBatch?: (batch: BatchInfo) => void;
  /** Splits a batch by shard on Citus (shard-router.ts). */
  readonly users?: () => Promise<KeyRouter>;
}

/** One device to register, with the time it connected. */
export interface DeviceConnect {
  readonly userId: string;
  readonly deviceId: string;
  readonly now: number;
  /** See DeviceOptions.receiptEvents. */
  readonly receiptEvents: boolean;
}

/**
 * A moving device's registration is only read when it was active this recently (default a
 * day; see DeviceConnectorOptions.movingFreshMs).
 */
export const MOVING_FRESH_MS = 24 * 3600 * 1000;

interface Pending extends DeviceConnect {
  readonly resolve: (state: DeviceState) => void;
  readonly reject: (err: ChatError) => void;
}

/** Counters for tests and metrics. */
export interface DeviceConnectStats {
  readonly connects: number;
  readonly statements: number;
  readonly largestBatch: number;
  /** Moving devices whose state was read without registering them again. */
  readonly movesRead: number;
}

const keyOf = (userId: string, deviceId: string): string => `${userId}\u0000${deviceId}`;

/**
 * @example
 * const connector = new DeviceConnector(db);
 * const { latestSeq, ackedSeq } = await connector.connect('alice', 'phone', Date.now());
 */
export class DeviceConnector {
  private readonly queue: BatchQueue<Pending>;
  /** Moving devices, read without a write first (readMovingDevices); misses go to `queue`. */
  private readonly moving: BatchQueue<Pending>;
  private counters = { connects: 0, statements: 0, largestBatch: 0, movesRead: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: DeviceConnectorOptions = {},
  ) {
    this.queue = new BatchQueue((batch) => this.run(batch), {
      maxBatchSize: options.maxBatchSize ?? 500,
      maxConcurrent: options.maxConcurrent ?? 2,
    });
    // One read at a time: moves arrive at the drain rate, and those that come while a read runs
    // share the next one (a drain has no hurry: the old connection delivers meanwhile).
    this.moving = new BatchQueue((batch) => this.readMoving(batch), {
      maxBatchSize: options.maxBatchSize ?? 500,
      maxConcurrent: 1,
    });
  }

  get stats(): DeviceConnectStats {
    return { ...this.counters };
  }

  /** Registers the device (and user) and returns its state; rejects with a ChatError. */
  connect(
    userId: string,
    deviceId: string,
    now: number,
    options: DeviceOptions = {},
  ): Promise<DeviceState> {
    if (this.queue.queued + this.moving.queued >= (this.options.maxQueued ?? 5000)) {
      return Promise.reject(new ChatError('UNAVAILABLE', 'too many connects waiting for storage'));
    }
    this.counters.connects++;
    const receiptEvents = options.receiptEvents ?? true;
    return new Promise<DeviceState>((resolve, reject) => {
      (options.moving === true ? this.moving : this.queue).push({
        userId,
        deviceId,
        now,
        receiptEvents,
        resolve,
        reject,
      });
    });
  }

  /** Resolves once nothing is queued or running. */
  async idle(): Promise<void> {
    await this.moving.idle();
    await this.queue.idle();
  }

  /**
   * Moving devices: a read, no write. A move comes for every device of a user whose owner
   * changed, at the drain rate; registering each (an upsert of the device, a commit waiting for
   * its WAL flush) made the drain's registrations the largest cost beside the traffic, and the
   * sends' commits queued behind them (`npm run bench -- rebalance --profile`). The device is
   * connected to the old owner meanwhile, so nothing of its registration is new.
   */
  private async readMoving(batch: readonly Pending[]): Promise<void> {
    this.counters.statements++;
    let states: ReadonlyMap<string, DeviceState>;
    const report = this.batchReporter('connect-read', batch.length);
    try {
      states = await readMovingDevices(
        this.db,
        batch,
        this.options.movingFreshMs ?? MOVING_FRESH_MS,
        await this.options.users?.(),
      );
      report(true);
    } catch {
      // Registered as usual instead: its own failure, if any, is the one the caller sees. The
      // metrics count the failed read.
      report(false);
      states = new Map();
    }
    for (const pending of batch) {
      const state = states.get(keyOf(pending.userId, pending.deviceId));
      if (state === undefined) {
        this.queue.push(pending);
      } else {
        this.counters.movesRead++;
        pending.resolve(state);
      }
    }
  }

  /** Reports a statement starting now to `onBatch` once it is through (`committed` or not). */
  private batchReporter(kind: string, size: number): (committed: boolean) => void {
    const started = performance.now();
    return (committed) =>
      this.options.onBatch?.({ kind, size, durationMs: performance.now() - started, committed });
  }

  /** Registers a batch and settles its promises; never rejects. */
  private async run(batch: readonly Pending[]): Promise<void> {
    this.counters.statements++;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.length);
    let states: ReadonlyMap<string, DeviceState>;
    const report = this.batchReporter('connect', batch.length);
    try {
      states = await connectDevices(this.db, batch, await this.options.users?.());
      report(true);
    } catch (err) {
      report(false);
      const error = toChatError(err);
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const pending of batch) {
      const state = states.get(keyOf(pending.userId, pending.deviceId));
      if (state === undefined) pending.reject(toChatError(new Error('device upsert lost a row')));
      else pending.resolve(state);
    }
  }
}

/**
 * One statement for many devices: users inserted when new, the device upserted (its
 * `last_active` moved on), a retention tombstone consumed (the device was removed for being away
 * too long: it starts fresh and is told so) or the device's cursor found below the user's
 * `expired_seq` (events it had not acked were deleted by age: it is told the same, until it
 * acks past them), each user's latest seq read in the same snapshot
 * as the device's `created_seq`, and the receipt watermarks of the user's chats that moved
 * since the device was last active (what it missed while away). The same device twice in a
 * batch is registered once. Every row it touches is the user's own.
 *
 * Rows are inserted in (user, device) order, so two batches touching the same rows wait for
 * each other instead of deadlocking.
 */
export async function connectDevices(
  db: Kysely<Database>,
  connects: readonly DeviceConnect[],
  router: KeyRouter = WHOLE_BATCH,
): Promise<Map<string, DeviceState>> {
  const unique = new Map<string, DeviceConnect>();
  for (const c of connects) {
    const key = keyOf(c.userId, c.deviceId);
    const seen = unique.get(key);
    if (seen === undefined || c.now > seen.now) unique.set(key, c);
  }
  const states = await perShard(
    router,
    [...unique.values()],
    (c) => c.userId,
    async (rows, keys) => {
      // On Citus the CTEs of this statement run one after the other, so `old` would read the
      // rows after the upsert: there they are read by a statement of their own first.
      const before = keys === null ? null : await lastActivity(db, rows, keys);
      const { rows: found } = await sql<{
        user_id: string;
        device_id: string;
        acked_seq: string;
        latest: string;
        created: boolean;
        reset: boolean;
        receipts: { chatId: string; reader: string; delivered: string; read: string }[];
      }>`
    with input as (${connectInput(rows)}),
    new_users as (
      insert into users (id)
      select distinct user_id from input where true${onShard('user_id', keys)} order by user_id
      on conflict (id) do nothing
    ),
    -- A user inserted just now is not in this statement's snapshot: no events yet, latest 0.
    usr as (
      select i.user_id, coalesce(${latestSeq(keys)}, 0) as latest,
        coalesce(u.expired_seq, 0) as expired
      from (select distinct user_id from input) i
      left join users u on u.id = i.user_id${onShard('u.id', keys)}
    ),
    -- The rows as they were: when each known device was last active.
    old as (${
      before === null
        ? sql`
      select d.user_id, d.device_id, d.last_active from devices d
      join input i on i.user_id = d.user_id and i.device_id = d.device_id`
        : sql`
      select * from unnest(${before.map((b) => b.user_id)}::text[],
        ${before.map((b) => b.device_id)}::text[], ${before.map((b) => b.last_active)}::int8[])
        as t(user_id, device_id, last_active)`
    }
    ),
    tomb as (
      delete from expired_devices e using input i
      where e.user_id = i.user_id and e.device_id = i.device_id${onShard('e.user_id', keys)}
      returning e.user_id, e.device_id
    ),
    dev as (
      insert into devices (user_id, device_id, acked_seq, created_seq, last_active,
          receipt_events)
      select i.user_id, i.device_id, 0, usr.latest, i.now, i.receipt_events
      from input i join usr on usr.user_id = i.user_id
      where true${onShard('i.user_id', keys)}
      order by i.user_id, i.device_id
      on conflict (user_id, device_id) do update set last_active = excluded.last_active,
        receipt_events = excluded.receipt_events
      returning user_id, device_id, acked_seq, created_seq, (xmax = 0) as created
    )
    select dev.user_id, dev.device_id, dev.acked_seq, usr.latest, dev.created,
      exists(
        select 1 from tomb t where t.user_id = dev.user_id and t.device_id = dev.device_id
      ) or (not dev.created and greatest(dev.acked_seq, dev.created_seq) < usr.expired)
        as reset,
      ${receiptsSince('dev.user_id', 'old.last_active', keys)} as receipts
    from dev join usr on usr.user_id = dev.user_id
    left join old on old.user_id = dev.user_id and old.device_id = dev.device_id`.execute(db);
      return found;
    },
  );
  return new Map(states.map((s) => [keyOf(s.user_id, s.device_id), toDeviceState(s)]));
}

/**
 * The state of moving devices, read in one statement (per shard on Citus), writing nothing: the
 * same answer as connectDevices for each device that is registered, was active within
 * `freshMs`, has no retention tombstone, is not behind the user's expired seq (it would
 * be told `reset`) and takes receipts as it did. The others are left out of the map, to be
 * registered as usual.
 */
export async function readMovingDevices(
  db: Kysely<Database>,
  connects: readonly DeviceConnect[],
  freshMs: number = MOVING_FRESH_MS,
  router: KeyRouter = WHOLE_BATCH,
): Promise<Map<string, DeviceState>> {
  const rows = await perShard(
    router,
    connects,
    (c) => c.userId,
    async (group, keys) => {
      const { rows: found } = await sql<{
        user_id: string;
        device_id: string;
        acked_seq: string;
        latest: string;
        receipts: { chatId: string; reader: string; delivered: string; read: string }[];
      }>`
    with input as (${connectInput(group)})
    select d.user_id, d.device_id, d.acked_seq, coalesce(${latestSeq(keys)}, 0) as latest,
      ${receiptsSince('d.user_id', 'd.last_active', keys)} as receipts
    from input i
    join devices d on d.user_id = i.user_id and d.device_id = i.device_id
    join users u on u.id = i.user_id${onShard('u.id', keys)}
    where d.last_active >= i.now - ${freshMs}::int8
      and d.receipt_events = i.receipt_events
      and greatest(d.acked_seq, d.created_seq) >= coalesce(u.expired_seq, 0)
      and not exists (
        select 1 from expired_devices e
        where e.user_id = i.user_id and e.device_id = i.device_id${onShard('e.user_id', keys)})
      ${onShard('d.user_id', keys)}`.execute(db);
      return found;
    },
  );
  return new Map(
    rows.map((s) => [keyOf(s.user_id, s.device_id), toDeviceState({ ...s, created: false })]),
  );
}

/** When each of the devices that exist was last active (one shard's devices, Citus only). */
async function lastActivity(
  db: Kysely<Database>,
  connects: readonly DeviceConnect[],
  keys: readonly string[],
): Promise<{ user_id: string; device_id: string; last_active: string }[]> {
  const { rows } = await sql<{ user_id: string; device_id: string; last_active: string }>`
    select d.user_id, d.device_id, d.last_active from devices d
    join unnest(${connects.map((c) => c.userId)}::text[], ${connects.map((c) => c.deviceId)}::text[])
      as i(user_id, device_id) on i.user_id = d.user_id and i.device_id = d.device_id
    where d.user_id = any(${keys}::text[])`.execute(db);
  return rows;
}

/** The connects as rows (user_id, device_id, now, receipt_events). */
function connectInput(connects: readonly DeviceConnect[]): RawBuilder<unknown> {
  return sql`select * from unnest(
    ${connects.map((r) => r.userId)}::text[],
    ${connects.map((r) => r.deviceId)}::text[],
    ${connects.map((r) => r.now)}::bigint[],
    ${connects.map((r) => r.receiptEvents)}::boolean[]
  ) as t(user_id, device_id, now, receipt_events)`;
}

/**
 * The receipt watermarks of the user's chats that moved after `since` (what a device missed
 * while away), as a JSON array.
 */
function receiptsSince(
  userColumn: string,
  sinceColumn: string,
  keys: readonly string[] | null,
): RawBuilder<unknown> {
  return sql`coalesce((
    select jsonb_agg(jsonb_build_object('chatId', r.chat_id, 'reader', r.reader,
        'delivered', r.delivered_upto::text, 'read', r.read_upto::text)
      order by r.chat_id, r.reader)
    from receipt_marks r
    where r.user_id = ${sql.raw(userColumn)}${onShard('r.user_id', keys)}
      and r.updated_at > ${sql.raw(sinceColumn)}
  ), '[]'::jsonb)`;
}

/** A device's state from the columns both statements return. */
function toDeviceState(row: {
  latest: string;
  acked_seq: string;
  created: boolean;
  reset?: boolean;
  receipts: { chatId: string; reader: string; delivered: string; read: string }[];
}): DeviceState {
  return {
    latestSeq: Number(row.latest),
    ackedSeq: Number(row.acked_seq),
    created: row.created,
    ...(row.reset === true ? { reset: true as const } : {}),
    receipts: row.receipts.map(toReceiptMark),
  };
}

function toReceiptMark(r: {
  chatId: string;
  reader: string;
  delivered: string;
  read: string;
}): ReceiptMark {
  return {
    chatId: r.chatId,
    reader: r.reader,
    delivered: r.delivered === '0' ? null : r.delivered,
    read: r.read === '0' ? null : r.read,
  };
}
