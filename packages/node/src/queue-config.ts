/**
 * Bounds of the node's in-memory storage queues (CHAT_SEND_QUEUE_MAX, CHAT_CONNECT_QUEUE_MAX),
 * read apart from the rest of the node's config like retention's. While Postgres hangs, sends
 * and device registrations wait in these queues; past a bound the node answers UNAVAILABLE at
 * once instead of holding more in memory (clients retry a send with the same clientMsgId, and a
 * refused connect is closed with 1013 and reconnects later).
 */
import type { Env } from '@chat/cluster';
import { EnvReader } from '@chat/cluster';

export interface QueueConfig {
  /** Most sends waiting for a chat step statement. */
  readonly maxQueuedSends: number;
  /** Most device registrations waiting for a statement. */
  readonly maxQueuedConnects: number;
}

export const defaultQueueConfig: QueueConfig = Object.freeze({
  maxQueuedSends: 10_000,
  maxQueuedConnects: 5_000,
});

/** Reads the bounds; throws ConfigError naming the variable. */
export function queueConfigFromEnv(env: Env): QueueConfig {
  const r = new EnvReader(env);
  const d = defaultQueueConfig;
  return Object.freeze({
    maxQueuedSends: r.int('CHAT_SEND_QUEUE_MAX', d.maxQueuedSends, 1, 10_000_000),
    maxQueuedConnects: r.int('CHAT_CONNECT_QUEUE_MAX', d.maxQueuedConnects, 1, 10_000_000),
  });
}
