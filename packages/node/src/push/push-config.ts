/**
 * The push outbox's settings (issue 18), read apart from the node's other config like
 * retention's; the providers' own (credentials, URLs) are @chat/push's `parsePushConfig`.
 */
import type { Env } from '@chat/cluster';
import { EnvReader } from '@chat/cluster';
import type { PushWorkerOptions } from './push-worker';

export interface PushOutboxConfig extends PushWorkerOptions {
  /** A connected device that has not acked a message this long is notified too. */
  readonly ackWaitMs: number;
  /** Web Push endpoints on loopback/private addresses are accepted (tests, local runs only). */
  readonly allowPrivateEndpoints: boolean;
  /** Users whose push targets the node keeps in memory, and for how long. */
  readonly targetsCacheUsers: number;
  readonly targetsCacheMs: number;
}

export const defaultPushOutboxConfig: PushOutboxConfig = Object.freeze({
  windowMs: 60_000,
  ackWaitMs: 5_000,
  concurrency: 32,
  retry: Object.freeze({ baseMs: 1_000, maxMs: 300_000, maxAttempts: 10 }),
  leaseMs: 60_000,
  pollMs: 1_000,
  batch: 200,
  ttlSeconds: 86_400,
  statsMs: 5_000,
  allowPrivateEndpoints: false,
  targetsCacheUsers: 100_000,
  targetsCacheMs: 60_000,
});

/** Reads the settings; throws ConfigError naming the variable. */
export function pushOutboxConfigFromEnv(env: Env): PushOutboxConfig {
  const r = new EnvReader(env);
  const d = defaultPushOutboxConfig;
  const retryBaseMs = r.int('CHAT_PUSH_RETRY_BASE_MS', d.retry.baseMs, 10, 3_600_000);
  return Object.freeze({
    windowMs: r.int('CHAT_PUSH_WINDOW_MS', d.windowMs, 0, 86_400_000),
    ackWaitMs: r.int('CHAT_PUSH_ACK_WAIT_MS', d.ackWaitMs, 100, 600_000),
    concurrency: r.int('CHAT_PUSH_CONCURRENCY', d.concurrency, 1, 10_000),
    retry: Object.freeze({
      baseMs: retryBaseMs,
      maxMs: r.int('CHAT_PUSH_RETRY_MAX_MS', d.retry.maxMs, retryBaseMs, 86_400_000),
      maxAttempts: r.int('CHAT_PUSH_MAX_ATTEMPTS', d.retry.maxAttempts, 1, 1000),
    }),
    leaseMs: r.int('CHAT_PUSH_LEASE_MS', d.leaseMs, 1_000, 3_600_000),
    pollMs: r.int('CHAT_PUSH_POLL_MS', d.pollMs, 10, 600_000),
    batch: d.batch,
    ttlSeconds: r.int('CHAT_PUSH_TTL_SECONDS', d.ttlSeconds, 0, 2_419_200),
    statsMs: d.statsMs,
    allowPrivateEndpoints: r.int('CHAT_PUSH_ALLOW_PRIVATE_ENDPOINTS', 0, 0, 1) === 1,
    targetsCacheUsers: d.targetsCacheUsers,
    targetsCacheMs: d.targetsCacheMs,
  });
}
