/**
 * When the outbox tries a notification again (pure, for the delivery worker). A provider that
 * says when (Retry-After) is believed, within the cap; otherwise the wait doubles from `baseMs`
 * per attempt up to `maxMs` (`backoffCeiling` of @chat/protocol, without jitter). After
 * `maxAttempts` the notification is given up.
 */
import { backoffCeiling } from '@chat/protocol';

export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly maxAttempts: number;
}

export type RetryDecision =
  { readonly giveUp: true } | { readonly giveUp: false; readonly atMs: number };

/**
 * `attempts`: the failed attempts before this one (0 for the first failure).
 *
 * @example
 * retryAfterFailure({ baseMs: 1000, maxMs: 60_000, maxAttempts: 8 }, 2, 5_000, undefined);
 * // { giveUp: false, atMs: 9_000 }: the third failure waits 4 s
 */
export function retryAfterFailure(
  policy: RetryPolicy,
  attempts: number,
  now: number,
  retryAfterMs: number | undefined,
): RetryDecision {
  if (attempts + 1 >= policy.maxAttempts) return { giveUp: true };
  const backoff = backoffCeiling(attempts, policy);
  const wait =
    retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0
      ? Math.min(policy.maxMs, retryAfterMs)
      : backoff;
  return { giveUp: false, atMs: now + wait };
}
