import type { Env } from '@chat/cluster';
import { EnvReader } from '@chat/cluster';

/** Time source, injected so timing logic can be tested without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/** Largest CHAT_CLOCK_OFFSET_MS either way: a skew test needs seconds, not hours. */
const MAX_OFFSET_MS = 10 * 60 * 1000;

/**
 * `base` shifted by `offsetMs` (positive: ahead), what a host whose clock drifted would read.
 *
 * @example
 * const ahead = offsetClock(systemClock, 5000); // 5 s fast
 */
export function offsetClock(base: Clock, offsetMs: number): Clock {
  if (offsetMs === 0) return base;
  return Object.freeze({ now: () => base.now() + offsetMs });
}

/**
 * The node's clock: the system's, shifted by CHAT_CLOCK_OFFSET_MS (a testing aid that makes one
 * node's clock skewed for real, in its own process; 0 by default). Throws ConfigError naming the
 * variable.
 */
export function clockFromEnv(env: Env): Clock {
  const offsetMs = new EnvReader(env).int('CHAT_CLOCK_OFFSET_MS', 0, -MAX_OFFSET_MS, MAX_OFFSET_MS);
  return offsetClock(systemClock, offsetMs);
}
