/**
 * Retention settings (CHAT_RETENTION_*, CHAT_CLEANUP_*), read apart from the rest of the node's
 * config like media's. Every field is listed in the README's configuration table.
 */
import type { Env } from '@chat/cluster';
import { ConfigError, EnvReader } from '@chat/cluster';

export const DAY_MS = 24 * 3600 * 1000;

export interface RetentionConfig {
  /** Anything older is deleted, delivered or not; devices inactive this long are removed. */
  readonly retentionMs: number;
  /**
   * A message delivered to every device keeps its content this long after it was sent
   * (attachment downloads still find it), then the content goes. What read receipts need stays
   * until every recipient has read it, or retentionMs.
   */
  readonly deliveredGraceMs: number;
  /**
   * How long attachment objects are kept, after their message reached every recipient, for
   * recipient devices that have not fetched a download URL yet; once every one has, they go at
   * the next pass. Never past retentionMs.
   */
  readonly attachmentGraceMs: number;
  /** Time between cleanup passes. */
  readonly intervalMs: number;
  /** Rows per cleanup statement. */
  readonly batchSize: number;
  /** Pause between cleanup statements. */
  readonly pauseMs: number;
}

export const defaultRetentionConfig: RetentionConfig = Object.freeze({
  retentionMs: 30 * DAY_MS,
  deliveredGraceMs: 5 * 60_000,
  attachmentGraceMs: 7 * DAY_MS,
  intervalMs: 60_000,
  batchSize: 1000,
  pauseMs: 20,
});

/** Whole days of a retention period, at least 1 (bucket lifecycle rules count in days). */
export function retentionDays(config: RetentionConfig): number {
  return Math.max(1, Math.ceil(config.retentionMs / DAY_MS));
}

/**
 * Reads CHAT_RETENTION_DAYS or, for tests, CHAT_RETENTION_MS (which wins when both are set);
 * throws ConfigError naming the variable.
 */
export function retentionConfigFromEnv(env: Env): RetentionConfig {
  const r = new EnvReader(env);
  const d = defaultRetentionConfig;
  const days = r.int('CHAT_RETENTION_DAYS', d.retentionMs / DAY_MS, 1, 3650);
  const retentionMs = r.int('CHAT_RETENTION_MS', days * DAY_MS, 1000, 3650 * DAY_MS);
  const deliveredGraceMs = graceWithin(
    r,
    'CHAT_RETENTION_DELIVERED_GRACE_MS',
    d.deliveredGraceMs,
    retentionMs,
  );
  const attachmentGraceMs = graceWithin(
    r,
    'CHAT_RETENTION_ATTACHMENT_GRACE_MS',
    d.attachmentGraceMs,
    retentionMs,
  );
  return Object.freeze({
    retentionMs,
    deliveredGraceMs,
    attachmentGraceMs,
    intervalMs: r.int('CHAT_CLEANUP_INTERVAL_MS', d.intervalMs, 10, DAY_MS),
    batchSize: r.int('CHAT_CLEANUP_BATCH', d.batchSize, 1, 100_000),
    pauseMs: r.int('CHAT_CLEANUP_PAUSE_MS', d.pauseMs, 0, 60_000),
  });
}

/** A grace period no longer than the retention period (the default is cut down to it). */
function graceWithin(r: EnvReader, name: string, fallbackMs: number, retentionMs: number): number {
  const graceMs = r.int(name, Math.min(fallbackMs, retentionMs), 0, 3650 * DAY_MS);
  if (graceMs > retentionMs)
    throw new ConfigError(`${name} must not be longer than the retention period`);
  return graceMs;
}
