/**
 * Reconnect and retry delays: exponential growth capped at a maximum, with full jitter
 * (delay = random(0, min(max, base * 2^attempt))), so that clients that lost the same node
 * spread their reconnects instead of stampeding the registry and the new owner.
 */

export interface BackoffSettings {
  /** Delay ceiling of the first attempt, in ms. */
  readonly baseMs: number;
  /** Highest delay ceiling, in ms. */
  readonly maxMs: number;
}

/** Returns a number in [0, 1), like Math.random. */
export type RandomSource = () => number;

/**
 * The ceiling of the jittered delay for an attempt (0 for the first retry).
 *
 * @example
 * backoffCeiling(3, { baseMs: 250, maxMs: 10_000 }); // 2000
 */
export function backoffCeiling(attempt: number, settings: BackoffSettings): number {
  const n = Math.max(0, Math.floor(attempt));
  // 2^n overflows to Infinity for large n, which Math.min handles; cap the exponent anyway.
  return Math.min(settings.maxMs, settings.baseMs * 2 ** Math.min(n, 52));
}

/**
 * A full-jitter delay for an attempt: uniform in [0, ceiling).
 *
 * @example
 * backoffDelay(0, { baseMs: 250, maxMs: 10_000 }, Math.random); // somewhere in [0, 250)
 */
export function backoffDelay(
  attempt: number,
  settings: BackoffSettings,
  random: RandomSource,
): number {
  const raw = random();
  // A broken source (NaN, out of range) must not produce a negative or unbounded delay.
  const r = raw > 0 ? Math.min(raw, 1) : 0;
  return Math.floor(r * backoffCeiling(attempt, settings));
}

/** Counts consecutive failures and hands out the next delay; `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly settings: BackoffSettings,
    private readonly random: RandomSource,
  ) {}

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const delay = backoffDelay(this.attempt, this.settings, this.random);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}
