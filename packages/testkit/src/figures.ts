/** Figures the cluster tests print and judge: percentiles, peaks per second, counts. */
import { peakPerSecond as peakOfAscending } from '@chat/cluster';

/** The p-th percentile (0..100) by nearest rank; NaN for no samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

/** Most events within any one-second window, from their timestamps in any order. */
export function peakPerSecond(times: readonly number[]): number {
  return peakOfAscending([...times].sort((a, b) => a - b));
}

/** Counts by value, as a plain object (for printing). */
export function countBy<T>(items: Iterable<T>, key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
