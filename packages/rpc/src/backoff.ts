/** Reconnect backoff: exponential with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"). */
export interface BackoffOptions {
  /** Cap of the first delay, in ms. Default 50. */
  readonly baseMs: number;
  /** Largest cap, in ms. Default 5000. */
  readonly maxMs: number;
}

export const defaultBackoff: BackoffOptions = Object.freeze({ baseMs: 50, maxMs: 5000 });

/**
 * Delay before reconnect attempt `attempt` (0 for the first retry): uniform in
 * [0, min(maxMs, baseMs * 2^attempt)). Full jitter spreads the reconnects of many nodes to one
 * restarted peer instead of synchronising them.
 *
 * @example
 * backoffDelay(3, defaultBackoff, Math.random); // somewhere in [0, 400)
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number,
): number {
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
