/**
 * The SDK's reconnect and retry delays: @chat/protocol's backoff with full jitter (a delay
 * anywhere in [0, min(max, base * 2^attempt))), so that the clients of a node that went away
 * spread their reconnects instead of stampeding the registry and the new owner.
 */
import { Backoff as PolicyBackoff, backoffDelay as policyDelay } from '@chat/protocol';
import type { BackoffPolicy, RandomSource } from '@chat/protocol';

export { backoffCeiling } from '@chat/protocol';
export type { RandomSource } from '@chat/protocol';

/** Delay ceilings; the SDK's jitter is always full. */
export type BackoffSettings = Pick<BackoffPolicy, 'baseMs' | 'maxMs'>;

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
  return policyDelay(attempt, { ...settings, jitter: 'full' }, random);
}

/** Counts consecutive failures and hands out the next full-jitter delay. */
export class Backoff extends PolicyBackoff {
  constructor(settings: BackoffSettings, random: RandomSource) {
    super({ ...settings, jitter: 'full' }, random);
  }
}
