import { retryAfterFailure } from '../../src/push/schedule';

const policy = { baseMs: 1000, maxMs: 30_000, maxAttempts: 6 };

describe('retryAfterFailure', () => {
  it('doubles the wait per failed attempt, up to the cap', () => {
    const waits = [0, 1, 2, 3, 4].map((attempts) => {
      const d = retryAfterFailure(policy, attempts, 100_000, undefined);
      return d.giveUp ? null : d.atMs - 100_000;
    });
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000]);
    const capped = retryAfterFailure({ ...policy, maxAttempts: 100 }, 10, 0, undefined);
    expect(capped).toEqual({ giveUp: false, atMs: 30_000 });
  });

  it('believes the provider’s Retry-After, shorter or longer than the backoff, within the cap', () => {
    expect(retryAfterFailure(policy, 3, 5000, 120)).toEqual({ giveUp: false, atMs: 5120 });
    expect(retryAfterFailure(policy, 0, 5000, 20_000)).toEqual({ giveUp: false, atMs: 25_000 });
    expect(retryAfterFailure(policy, 0, 5000, 3_600_000)).toEqual({ giveUp: false, atMs: 35_000 });
    expect(retryAfterFailure(policy, 0, 5000, -1)).toEqual({ giveUp: false, atMs: 6000 });
  });

  it('gives up after maxAttempts failures', () => {
    expect(retryAfterFailure(policy, 4, 0, undefined).giveUp).toBe(false);
    expect(retryAfterFailure(policy, 5, 0, undefined)).toEqual({ giveUp: true });
    expect(retryAfterFailure({ ...policy, maxAttempts: 1 }, 0, 0, 10)).toEqual({ giveUp: true });
  });
});
