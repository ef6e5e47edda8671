import { ConfigError } from '@chat/cluster';
import { clockFromEnv, offsetClock } from '../src/clock';

it('shifts a clock by a fixed offset', () => {
  const base = { now: () => 1_000_000 };
  expect(offsetClock(base, 5000).now()).toBe(1_005_000);
  expect(offsetClock(base, -5000).now()).toBe(995_000);
  expect(offsetClock(base, 0)).toBe(base);
});

it('reads CHAT_CLOCK_OFFSET_MS, 0 by default, and names it when invalid', () => {
  const before = Date.now();
  expect(clockFromEnv({}).now()).toBeGreaterThanOrEqual(before);
  expect(clockFromEnv({}).now()).toBeLessThan(before + 5000);
  expect(clockFromEnv({ CHAT_CLOCK_OFFSET_MS: '5000' }).now()).toBeGreaterThanOrEqual(
    before + 5000,
  );
  for (const bad of ['5s', '1.5', '600001', '-600001']) {
    expect(() => clockFromEnv({ CHAT_CLOCK_OFFSET_MS: bad })).toThrow(ConfigError);
    expect(() => clockFromEnv({ CHAT_CLOCK_OFFSET_MS: bad })).toThrow(/CHAT_CLOCK_OFFSET_MS/);
  }
});
