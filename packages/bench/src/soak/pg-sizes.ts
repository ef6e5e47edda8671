/**
 * The database's size as the soak samples it: every table's total size (heap, indexes and
 * TOAST: pg_total_relation_size) and dead tuples (pg_stat_user_tables, as of the last
 * statistics report), and the inbox's exact row count. On Citus the same summed over every
 * server's copy of the database, each shard counted under its table's name (`inbox_102008` is
 * `inbox`); the coordinator's distributed tables are empty shells.
 */
import { withClient } from '../pg-stats';

export interface TableSize {
  readonly bytes: number;
  readonly deadTuples: number;
}

export interface DbSizes {
  readonly tables: Readonly<Record<string, TableSize>>;
  readonly totalBytes: number;
  readonly deadTuples: number;
  readonly inboxRows: number;
}

/**
 * `url`: the database clients use (the coordinator's on Citus); `serverUrls`: the same database
 * on every server whose tables count (default: `url` alone).
 */
export async function sampleDbSizes(
  url: string,
  serverUrls: readonly string[] = [url],
): Promise<DbSizes> {
  const tables: Record<string, TableSize> = {};
  let totalBytes = 0;
  let deadTuples = 0;
  for (const serverUrl of serverUrls) {
    const rows = await withClient(serverUrl, async (client) => {
      // Citus hides shards from catalog views for other applications; a placeholder setting
      // elsewhere (plain PostgreSQL takes any name with a dot).
      await client.query(`set citus.show_shards_for_app_name_prefixes = '*'`);
      const result = await client.query<{ relname: string; bytes: string; dead: string }>(
        `select relname, pg_total_relation_size(relid) as bytes, n_dead_tup as dead
         from pg_stat_user_tables where schemaname = 'public'`,
      );
      return result.rows;
    });
    for (const r of rows) {
      const name = tableOfShard(r.relname);
      const seen = tables[name] ?? { bytes: 0, deadTuples: 0 };
      tables[name] = {
        bytes: seen.bytes + Number(r.bytes),
        deadTuples: seen.deadTuples + Number(r.dead),
      };
      totalBytes += Number(r.bytes);
      deadTuples += Number(r.dead);
    }
  }
  const inboxRows = await withClient(url, async (client) => {
    const { rows } = await client.query<{ n: string }>('select count(*) as n from inbox');
    return Number(rows[0]?.n ?? 0);
  });
  return { tables, totalBytes, deadTuples, inboxRows };
}

/** `inbox_102008` (a Citus shard) is `inbox`; a plain table keeps its name. */
export function tableOfShard(relname: string): string {
  return relname.replace(/_\d{6,}$/, '');
}
