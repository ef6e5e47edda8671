/** Retry pacing of the etcd adapters (watch, election, registration, lease keepalive). */
import { backoffDelay } from '@chat/protocol';
import type { BackoffPolicy } from '@chat/protocol';

/**
 * 100 ms doubling up to 2 s, equal jitter: each node retries its own etcd connection, a handful
 * of nodes at most, so the spread matters less than a floor under the delay, which keeps a node
 * from retrying at once into an etcd that refuses it at once.
 */
export const ETCD_RETRY: BackoffPolicy = Object.freeze({
  baseMs: 100,
  maxMs: 2_000,
  jitter: 'equal',
});

/** The delay before etcd retry number `attempt` (0-based), at most `maxMs`. */
export function etcdRetryDelay(attempt: number, maxMs: number = ETCD_RETRY.maxMs): number {
  return backoffDelay(attempt, { ...ETCD_RETRY, maxMs }, Math.random);
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
