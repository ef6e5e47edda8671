/**
 * A small seeded PRNG (mulberry32), so that the random input of a failing test can be replayed.
 * Returns numbers in [0, 1).
 *
 * @example
 * const rnd = prng(42);
 * const pick = users[Math.floor(rnd() * users.length)];
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
