import { Backoff, backoffCeiling, backoffDelay } from '../src/backoff';

const settings = { baseMs: 250, maxMs: 10_000 };

describe('backoff', () => {
  it('doubles the ceiling per attempt up to the maximum', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map((a) => backoffCeiling(a, settings))).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000,
    ]);
  });

  it('jitters over the full range [0, ceiling)', () => {
    expect(backoffDelay(3, settings, () => 0)).toBe(0);
    expect(backoffDelay(3, settings, () => 0.5)).toBe(1000);
    expect(backoffDelay(3, settings, () => 0.999999)).toBe(1999);
    expect(backoffDelay(20, settings, () => 0.999999)).toBeLessThan(10_000);
  });

  it('stays within bounds for any random value, even out-of-range ones', () => {
    for (const r of [-1, 0, 0.1, 0.7, 1, 2, Number.NaN]) {
      for (let attempt = 0; attempt < 40; attempt++) {
        const d = backoffDelay(attempt, settings, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(backoffCeiling(attempt, settings));
      }
    }
  });

  it('counts attempts and resets', () => {
    const b = new Backoff(settings, () => 0.5);
    expect([b.next(), b.next(), b.next()]).toEqual([125, 250, 500]);
    expect(b.attempts).toBe(3);
    b.reset();
    expect(b.next()).toBe(125);
  });
});
