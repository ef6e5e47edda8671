/**
 * Batch-size percentiles of a step, from the nodes' own histograms: every node exports
 * `chat_pg_batch_size_bucket{kind, le}` (how many items each store statement carried, by kind
 * of batch). The bench scrapes `/metrics` of every node before and after a step and reads the
 * percentiles off the difference (the upper bound of the bucket holding the rank).
 */

/** Cumulative bucket counts of one histogram: upper bound -> count of observations <= it. */
export type Buckets = ReadonlyMap<number, number>;

/** Per batch kind, the summed buckets of every node. */
export type BatchHistograms = ReadonlyMap<string, Buckets>;

export interface BatchSizeSummary {
  /** Batches (statements) in the step. */
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

const BUCKET_LINE = /^chat_pg_batch_size_bucket\{([^}]*)\}\s+([0-9.eE+-]+)/;

/** Parses the bucket lines of `chat_pg_batch_size` out of Prometheus text. */
export function parseBatchBuckets(text: string): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const line of text.split('\n')) {
    const m = BUCKET_LINE.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries(
      [...m[1]!.matchAll(/([a-z_]+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]),
    );
    const kind = labels['kind'] ?? 'send';
    const le = labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels['le']);
    let buckets = out.get(kind);
    if (buckets === undefined) out.set(kind, (buckets = new Map()));
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return out;
}

/** Scrapes every node's /metrics and sums the batch-size buckets per kind. */
export async function scrapeBatchSizes(internalUrls: readonly string[]): Promise<BatchHistograms> {
  const total = new Map<string, Map<number, number>>();
  for (const url of internalUrls) {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
    for (const [kind, buckets] of parseBatchBuckets(await res.text())) {
      let sum = total.get(kind);
      if (sum === undefined) total.set(kind, (sum = new Map()));
      for (const [le, n] of buckets) sum.set(le, (sum.get(le) ?? 0) + n);
    }
  }
  return total;
}

/** Percentiles of the batches observed between two scrapes, per kind (kinds with none left out). */
export function batchSizesBetween(
  before: BatchHistograms,
  after: BatchHistograms,
): Record<string, BatchSizeSummary> {
  const out: Record<string, BatchSizeSummary> = {};
  for (const [kind, a] of after) {
    const b = before.get(kind);
    const bounds = [...a.keys()].sort((x, y) => x - y);
    const cumulative = bounds.map((le) => (a.get(le) ?? 0) - (b?.get(le) ?? 0));
    const count = cumulative[cumulative.length - 1] ?? 0;
    if (count <= 0) continue;
    const at = (p: number): number => {
      const rank = Math.ceil((p / 100) * count);
      const i = cumulative.findIndex((c) => c >= rank);
      return bounds[i] ?? Number.POSITIVE_INFINITY;
    };
    out[kind] = { count, p50: at(50), p90: at(90), p99: at(99), max: at(100) };
  }
  return out;
}
