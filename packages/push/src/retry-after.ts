/**
 * Retry-After (RFC 9110 §10.2.3) is either a number of seconds or an HTTP date. Providers send
 * it with 429 and 503; the outbox waits that long before the next attempt.
 *
 * @example parseRetryAfter('120', Date.now()) // 120000
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names a weekday and month; this keeps Date.parse from reading '-5' as a year.
  if (!/[A-Za-z]/.test(trimmed)) return undefined;
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, dateMs - nowMs);
}

/** The statuses every provider documents as "busy, try later". */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 503;
}
