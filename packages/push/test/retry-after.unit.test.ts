import { parseRetryAfter } from '../src/retry-after';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-12-07T15:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP date as the time left until it, never negative', () => {
    expect(parseRetryAfter('Mon, 07 Dec 2026 15:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Mon, 07 Dec 2026 14:59:00 GMT', now)).toBe(0);
  });

  it('ignores what is neither', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});
