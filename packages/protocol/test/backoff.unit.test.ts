import { Backoff, backoffCeiling, backoffDelay } from '../src';
import type { BackoffPolicy, Jitter } from '../src';
import { mulberry32 } from './helpers';

const policy = (jitter: Jitter): BackoffPolicy => ({ baseMs: 100, maxMs: 5_000, jitter });

/** The lowest delay each jitter may give, as a share of the ceiling. */
const lowestShare: Record<Jitter, number> = { full: 0, equal: 0.5 };

describe('backoffCeiling', () => {
  it('doubles from baseMs and stops at maxMs', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffCeiling(n, policy('full')));
    expect(ceilings).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
  });

  it('treats odd attempt numbers as the nearest sane one and never overflows', () => {
    expect(backoffCeiling(-3, policy('full'))).toBe(100);
    expect(backoffCeiling(2.7, policy('full'))).toBe(400);
    expect(backoffCeiling(10_000, policy('full'))).toBe(5_000);
    expect(backoffCeiling(10_000, { baseMs: 0, maxMs: 5_000 })).toBe(0);
  });
});

describe.each(['full', 'equal'] as const)('backoffDelay with %s jitter', (jitter) => {
  const p = policy(jitter);

  it('spans [lowest share of the ceiling, ceiling) at the ends of the random range', () => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const ceiling = backoffCeiling(attempt, p);
      expect(backoffDelay(attempt, p, () => 0)).toBe(ceiling * lowestShare[jitter]);
      expect(backoffDelay(attempt, p, () => 1 - 2 ** -40)).toBe(ceiling - 1);
    }
  });

  it('draws inside its bounds and fills them (10 000 seeded draws)', () => {
    const random = mulberry32(19);
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = backoffCeiling(attempt, p);
      const lowest = ceiling * lowestShare[jitter];
      const draws = Array.from({ length: 1_250 }, () => backoffDelay(attempt, p, random));
      expect(draws.every(Number.isInteger)).toBe(true);
      const [min, max] = [Math.min(...draws), Math.max(...draws)];
      expect(min).toBeGreaterThanOrEqual(lowest);
      expect(max).toBeLessThan(ceiling);
      // Uniform: both ends of the range are reached, the mean is about the middle.
      const span = ceiling - lowest;
      expect(min).toBeLessThan(lowest + span * 0.05);
      expect(max).toBeGreaterThan(ceiling - span * 0.05 - 1);
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      expect(Math.abs(mean - (lowest + span / 2))).toBeLessThan(span * 0.05);
    }
  });

  it('stays in bounds when the random source is broken', () => {
    for (const bad of [Number.NaN, -1, 2, Number.POSITIVE_INFINITY]) {
      const d = backoffDelay(3, p, () => bad);
      expect(d).toBeGreaterThanOrEqual(800 * lowestShare[jitter]);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});

describe('Backoff', () => {
  it('hands out growing delays and starts over after reset', () => {
    const backoff = new Backoff(policy('equal'), () => 0);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([50, 100, 200]);
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(50);
  });
});
