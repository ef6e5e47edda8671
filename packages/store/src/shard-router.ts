/**
 * Splits a batch so that each statement touches one shard (issue 15, docs/durable-path.md).
 *
 * On plain PostgreSQL a batch stays whole: one statement, as before. On Citus, the chat step
 * and the user step are called through their routed functions (`chat_store_messages_at`,
 * `chat_append_events_at`, distributed by their first argument): the coordinator hands the
 * call to the worker that holds the shard of that key, where every statement of the function
 * reads and writes that shard only (its keys are all in it; a key of another shard makes the
 * function fail rather than fan out, `citus.multi_task_query_log_level = error`). So the items
 * are grouped by shard, each group with one of its keys as the route.
 *
 * Which shard a key is in comes from the coordinator once per key and is remembered: shard ids
 * stay the same when shards move between workers. A split makes new ones: a statement that
 * then reaches two shards fails (the batch is retried), and the keys are asked again.
 */
import { sql } from 'kysely';
import type { Kysely, RawBuilder, Transaction } from 'kysely';
import type { Database } from './schema';
import { detectEngine } from './citus';

/** Items that may go to one statement; `route` names their shard (null: plain PostgreSQL). */
export interface RoutedGroup<T> {
  readonly route: string | null;
  readonly items: T[];
}

export interface KeyRouter {
  group<T>(items: readonly T[], keyOf: (item: T) => string): Promise<RoutedGroup<T>[]>;
  /**
   * A statement of one group reached a second shard: the shards changed (a split), the keys
   * are asked again next time.
   */
  strayed(): void;
}

/** Plain PostgreSQL: one statement can touch any key. */
export const WHOLE_BATCH: KeyRouter = {
  group: <T>(items: readonly T[]) => Promise.resolve([{ route: null, items: [...items] }]),
  strayed: () => undefined,
};

/** Keys remembered before the cache starts over (a few MB). */
const MAX_CACHED_KEYS = 200_000;

/** Text Postgres can store (no U+0000): the only keys whose shard can be asked. */
function storable(key: string): boolean {
  return !key.includes('\u0000');
}

/** Groups keys by their Citus shard in the co-location group of `anchorTable`. */
export class CitusShardRouter implements KeyRouter {
  private readonly shardOf = new Map<string, string>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly anchorTable: 'users' | 'chats',
  ) {}

  async group<T>(items: readonly T[], keyOf: (item: T) => string): Promise<RoutedGroup<T>[]> {
    const unknown = [...new Set(items.map(keyOf).filter((k) => !this.shardOf.has(k)))];
    if (unknown.length > 0) await this.lookUp(unknown.filter(storable));
    const groups = new Map<string, RoutedGroup<T>>();
    for (const item of items) {
      const key = keyOf(item);
      // A key Postgres cannot hold goes alone: its statement fails without taking others along.
      const shard = this.shardOf.get(key) ?? `unroutable:${key}`;
      let group = groups.get(shard);
      if (group === undefined) {
        group = { route: key, items: [] };
        groups.set(shard, group);
      }
      group.items.push(item);
    }
    return [...groups.values()];
  }

  strayed(): void {
    this.shardOf.clear();
  }

  private async lookUp(keys: readonly string[]): Promise<void> {
    const { rows } = await sql<{ key: string; shard: string }>`
      select k as key, get_shard_id_for_distribution_column(${this.anchorTable}, k)::text as shard
      from unnest(${keys}::text[]) as k`.execute(this.db);
    if (this.shardOf.size + rows.length > MAX_CACHED_KEYS) this.shardOf.clear();
    for (const row of rows) this.shardOf.set(row.key, row.shard);
  }
}

/** The routers for the chat-keyed and the user-keyed tables of `db`'s engine. */
export async function keyRouters(
  db: Kysely<Database>,
): Promise<{ readonly chats: KeyRouter; readonly users: KeyRouter }> {
  if ((await detectEngine(db)) === 'postgres') return { chats: WHOLE_BATCH, users: WHOLE_BATCH };
  return { chats: new CitusShardRouter(db, 'chats'), users: new CitusShardRouter(db, 'users') };
}

/**
 * The routers of `db`, detected on first use (and again after a detection that failed), one
 * per Kysely instance: the stores sharing a pool share the detection and the shard cache.
 */
export class EngineRouters {
  private static readonly byDatabase = new WeakMap<Kysely<Database>, EngineRouters>();
  private detected: Promise<{ readonly chats: KeyRouter; readonly users: KeyRouter }> | undefined;

  private constructor(private readonly db: Kysely<Database>) {}

  static of(db: Kysely<Database>): EngineRouters {
    let routers = EngineRouters.byDatabase.get(db);
    if (routers === undefined) {
      routers = new EngineRouters(db);
      EngineRouters.byDatabase.set(db, routers);
    }
    return routers;
  }

  get(): Promise<{ readonly chats: KeyRouter; readonly users: KeyRouter }> {
    this.detected ??= keyRouters(this.db).catch((err: unknown) => {
      this.detected = undefined;
      throw err;
    });
    return this.detected;
  }
}

/**
 * Runs `statement` once per shard group of `items` (all at once), each call given its items
 * and, on Citus, their distinct keys and one of them as the route (both null on plain
 * PostgreSQL): a statement that adds `onShard(column, keys)` to every lookup of a distributed
 * table stays on one shard. Results in group order.
 */
export async function perShard<T, R>(
  router: KeyRouter,
  items: readonly T[],
  keyOf: (item: T) => string,
  statement: (items: T[], keys: string[] | null, route: string | null) => Promise<R[]>,
): Promise<R[]> {
  const groups = await router.group(items, keyOf);
  const results = await Promise.all(
    groups.map(({ route, items: group }) =>
      statement(group, route === null ? null : [...new Set(group.map(keyOf))], route).catch(
        (err: unknown) => {
          if (reachedSecondShard(err)) router.strayed();
          throw err;
        },
      ),
    ),
  );
  return results.flat();
}

/** Citus refused a statement that would have run on more than one shard. */
export function reachedSecondShard(err: unknown): boolean {
  return err instanceof Error && err.message.includes('multi-task query about to be executed');
}

/**
 * Session settings for connections whose statements must each stay on one shard (the chat
 * node's: issue 15): on Citus a statement that would run on several shards fails instead
 * (`acrossShards` lifts this for one transaction). On plain PostgreSQL the setting is an
 * unused placeholder.
 */
export const SINGLE_SHARD_SETTINGS: Readonly<Record<string, string>> = {
  'citus.multi_task_query_log_level': 'error',
};

/**
 * ` and <column> = any(keys)` on Citus, nothing on plain PostgreSQL (keys null), where the
 * extra condition could turn a key lookup into a scan of every key of the batch.
 */
export function onShard(column: string, keys: readonly string[] | null): RawBuilder<unknown> {
  return keys === null ? sql`` : sql` and ${sql.raw(column)} = any(${keys}::text[])`;
}

/**
 * Runs `fn` in a transaction whose statements may read every shard: for maintenance that has
 * to see all of them (the sweeper's scan of a stopped node's messages), on connections that
 * otherwise refuse multi-shard statements. On plain PostgreSQL the setting is an unused
 * placeholder.
 */
export function acrossShards<T>(
  db: Kysely<Database>,
  fn: (tx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (tx) => {
    await sql`select set_config('citus.multi_task_query_log_level', 'off', true)`.execute(tx);
    return fn(tx);
  });
}
