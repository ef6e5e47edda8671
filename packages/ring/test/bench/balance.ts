/**
 * Lookup cost and balance of the ring for 3, 4 and 10 equal-weight nodes.
 * Run: npx tsx packages/ring/test/bench/balance.ts
 *
 * - cold: each run looks up 20,000 ids never seen before by that ring (every lookup hashes,
 *   the LRU cache only churns);
 * - warm: each run looks up the same 1,000 ids, which fit in the cache (5,000 entries);
 * - max/mean: the largest user count of a node over the mean, over 100,000 ids, and the same
 *   from the exact continuum shares.
 */
import { buildRing, ringShares } from '../../src';

const RUNS = 9;
const COLD_KEYS = 20_000;
const WARM_KEYS = 1_000;
const WARM_REPEAT = 20;
const USERS = 100_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

let sink = 0;
function timeLookups(
  owner: (k: string) => string | undefined,
  keys: string[],
  repeat: number,
): number {
  const start = process.hrtime.bigint();
  for (let r = 0; r < repeat; r++) {
    for (const k of keys) sink += owner(k)?.length ?? 0;
  }
  return Number(process.hrtime.bigint() - start) / (keys.length * repeat);
}

console.log(
  'nodes | cold ns/lookup | warm ns/lookup | max/mean (100k ids) | max/mean (exact) | build ms',
);
console.log(
  '----- | -------------- | -------------- | ------------------- | ---------------- | --------',
);
for (const n of [3, 4, 10]) {
  const members = Array.from({ length: n }, (_, i) => ({ id: `node-${i + 1}`, weight: 1 }));
  const buildStart = process.hrtime.bigint();
  const ring = buildRing(members);
  const buildMs = Number(process.hrtime.bigint() - buildStart) / 1e6;

  const cold: number[] = [];
  const warm: number[] = [];
  const warmKeys = Array.from({ length: WARM_KEYS }, (_, i) => `warm-${i}`);
  for (let run = 0; run < RUNS; run++) {
    const coldKeys = Array.from({ length: COLD_KEYS }, (_, i) => `cold-${run}-${i}`);
    cold.push(timeLookups((k) => ring.owner(k), coldKeys, 1));
    warm.push(timeLookups((k) => ring.owner(k), warmKeys, WARM_REPEAT));
  }

  const counts = new Map<string, number>();
  for (let i = 0; i < USERS; i++) {
    const o = ring.owner(`user-${i}`);
    if (o !== undefined) counts.set(o, (counts.get(o) ?? 0) + 1);
  }
  const maxOverMean = Math.max(...counts.values()) / (USERS / n);
  const exact = Math.max(...ringShares(ring).map((s) => s.share)) * n;
  console.log(
    [
      String(n).padStart(5),
      median(cold).toFixed(0).padStart(14),
      median(warm).toFixed(0).padStart(14),
      maxOverMean.toFixed(3).padStart(19),
      exact.toFixed(3).padStart(16),
      buildMs.toFixed(1).padStart(8),
    ].join(' | '),
  );
}
if (sink < 0) console.log(sink);
