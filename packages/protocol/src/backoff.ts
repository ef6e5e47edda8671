/**
 * Retry delays shared by the SDK, the RPC client and the etcd adapters: exponential growth from
 * `baseMs`, capped at `maxMs`, randomised so that retriers that failed together do not retry
 * together (the schemes of the AWS Architecture Blog's "Exponential Backoff And Jitter").
 * Pure: the random source is passed in, so tests pin it.
 */

/**
 * How a delay is drawn below its ceiling:
 * - `full`: uniform in [0, ceiling). The widest spread, for many clients or nodes that lost the
 *   same peer at once and would otherwise stampede it.
 * - `equal`: uniform in [ceiling / 2, ceiling). Half the spread, but never sooner than half the
 *   ceiling, for one process retrying its own dependency, where a near-zero delay only repeats
 *   the failure.
 */
export type Jitter = 'full' | 'equal';

export interface BackoffPolicy {
  /** Ceiling of the first retry's delay, in ms. */
  readonly baseMs: number;
  /** Highest ceiling, in ms. */
  readonly maxMs: number;
  readonly jitter: Jitter;
}

/** Returns a number in [0, 1), like Math.random. */
export type RandomSource = () => number;

/**
 * The ceiling of the delay for retry number `attempt` (0 for the first):
 * min(maxMs, baseMs * 2^attempt).
 *
 * @example
 * backoffCeiling(3, { baseMs: 250, maxMs: 10_000 }); // 2000
 */
export function backoffCeiling(
  attempt: number,
  policy: Pick<BackoffPolicy, 'baseMs' | 'maxMs'>,
): number {
  const n = Math.max(0, Math.floor(attempt));
  // 2^1024 is Infinity and 0 * Infinity is NaN: stop the exponent long before.
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(n, 52));
}

/**
 * The delay for retry number `attempt` (0 for the first), in whole ms, with the policy's jitter.
 *
 * @example
 * backoffDelay(0, { baseMs: 250, maxMs: 10_000, jitter: 'full' }, Math.random); // in [0, 250)
 * backoffDelay(2, { baseMs: 100, maxMs: 2_000, jitter: 'equal' }, Math.random); // in [200, 400)
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: RandomSource): number {
  const ceiling = backoffCeiling(attempt, policy);
  const raw = random();
  // A broken source (NaN, out of range) must not give a negative or unbounded delay.
  const r = raw > 0 ? Math.min(raw, 1) : 0;
  const floor = policy.jitter === 'equal' ? ceiling / 2 : 0;
  return Math.floor(floor + r * (ceiling - floor));
}

/**
 * Counts consecutive failures and hands out the next delay; `reset()` after a success.
 *
 * @example
 * const backoff = new Backoff({ baseMs: 250, maxMs: 10_000, jitter: 'full' }, Math.random);
 * setTimeout(reconnect, backoff.next());
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: RandomSource,
  ) {}

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const delay = backoffDelay(this.attempt, this.policy, this.random);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}
