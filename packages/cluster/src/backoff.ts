/** Retry pacing for reconnects: exponential with full jitter, capped. */
export interface BackoffOptions {
  /** First delay, ms (default 100). */
  readonly initialMs?: number;
  /** Largest delay, ms (default 2000). */
  readonly maxMs?: number;
}

/**
 * Delay before retry number `attempt` (0-based): a random value in [base/2, base] where
 * base = min(maxMs, initialMs * 2^attempt). `random` is injectable for tests.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initialMs = options.initialMs ?? 100;
  const maxMs = options.maxMs ?? 2_000;
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** A sleep that `wake()` ends early (used so close() does not wait out a backoff). */
export class Sleeper {
  private timer: NodeJS.Timeout | undefined;
  private resolveSleep: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    this.wake();
    return new Promise((resolve) => {
      this.resolveSleep = resolve;
      this.timer = setTimeout(() => this.wake(), ms);
    });
  }

  wake(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const resolve = this.resolveSleep;
    this.resolveSleep = undefined;
    resolve?.();
  }
}
