/**
 * The retention job's pure parts: configuration, cut-off times from the injected clock, and the
 * batching of a pass (repeat a step while batches come back full, pause in between, bounded).
 * The statements themselves are tested against Postgres in retention.int.test.ts.
 */
import type { RetentionStore } from '@chat/store';
import pino from 'pino';
import { RetentionJob, TOMBSTONE_FACTOR, retentionCutoffs } from '../src/retention';
import { DAY_MS, retentionConfigFromEnv, retentionDays } from '../src/retention-config';

const log = pino({ level: 'silent' });

describe('retentionConfigFromEnv', () => {
  it('defaults to 30 days in batches of 1000', () => {
    const config = retentionConfigFromEnv({});
    expect(config).toMatchObject({ retentionMs: 30 * DAY_MS, batchSize: 1000 });
    expect(retentionDays(config)).toBe(30);
  });

  it('takes days, or milliseconds for tests (which win)', () => {
    expect(retentionConfigFromEnv({ CHAT_RETENTION_DAYS: '7' }).retentionMs).toBe(7 * DAY_MS);
    const short = retentionConfigFromEnv({ CHAT_RETENTION_DAYS: '7', CHAT_RETENTION_MS: '5000' });
    expect(short).toMatchObject({ retentionMs: 5000, deliveredGraceMs: 5000 });
    expect(retentionDays(short)).toBe(1);
  });

  it('rejects a delivered grace longer than the retention period', () => {
    expect(() =>
      retentionConfigFromEnv({
        CHAT_RETENTION_MS: '5000',
        CHAT_RETENTION_DELIVERED_GRACE_MS: '6000',
      }),
    ).toThrow(/CHAT_RETENTION_DELIVERED_GRACE_MS/);
  });

  it('keeps attachments 7 days after delivery by default, never longer than the retention period', () => {
    expect(retentionConfigFromEnv({}).attachmentGraceMs).toBe(7 * DAY_MS);
    expect(retentionConfigFromEnv({ CHAT_RETENTION_MS: '5000' }).attachmentGraceMs).toBe(5000);
    expect(() =>
      retentionConfigFromEnv({
        CHAT_RETENTION_MS: '5000',
        CHAT_RETENTION_ATTACHMENT_GRACE_MS: '6000',
      }),
    ).toThrow(/CHAT_RETENTION_ATTACHMENT_GRACE_MS must not be longer than the retention period/);
    expect(() => retentionConfigFromEnv({ CHAT_RETENTION_ATTACHMENT_GRACE_MS: 'soon' })).toThrow(
      /CHAT_RETENTION_ATTACHMENT_GRACE_MS/,
    );
  });
});

it('computes the cut-offs from the clock', () => {
  expect(retentionCutoffs(100_000, { retentionMs: 1000, deliveredGraceMs: 10 })).toEqual({
    expiredBefore: 99_000,
    deliveredBefore: 99_990,
    tombstonesBefore: 100_000 - 1000 * TOMBSTONE_FACTOR,
  });
});

/** A store with `expired` old inbox events and nothing else; records the cut-offs it got. */
function fakeStore(expired: number): RetentionStore & { cutoffs: number[] } {
  let left = expired;
  const cutoffs: number[] = [];
  return {
    cutoffs,
    cleanDelivered: () => Promise.resolve({ lastId: null, emptied: 0, deleted: 0 }),
    releaseAttachments: () => Promise.resolve({ lastPosition: null, released: 0, queued: 0 }),
    deleteExpiredInbox: (before, limit) => {
      cutoffs.push(before);
      const n = Math.min(left, limit);
      left -= n;
      return Promise.resolve(n);
    },
    deleteExpiredMessages: () => Promise.resolve({ messages: 0, keys: 0 }),
    deleteExpiredAttachmentIndex: () => Promise.resolve(0),
    deleteExpiredFetches: () => Promise.resolve(0),
    expireDevices: () => Promise.resolve({ devices: 0, events: 0 }),
    pruneTombstones: () => Promise.resolve(0),
    deleteExpiredReceiptMarks: () => Promise.resolve(0),
    queuedObjectKeys: () => Promise.resolve([]),
    dequeueObjectKeys: () => Promise.resolve(),
  };
}

it('repeats full batches with a pause in between, using the injected clock', async () => {
  const store = fakeStore(2500);
  const pauses: number[] = [];
  const job = new RetentionJob({
    store,
    config: {
      retentionMs: 1000,
      deliveredGraceMs: 0,
      attachmentGraceMs: 0,
      intervalMs: 60_000,
      batchSize: 1000,
      pauseMs: 7,
    },
    clock: { now: () => 50_000 },
    log,
    sleep: (ms) => {
      pauses.push(ms);
      return Promise.resolve();
    },
  });
  const report = await job.runOnce();
  expect(report.expiredEvents).toBe(2500);
  // 1000 + 1000 + 500: the short batch ends the step.
  expect(store.cutoffs).toEqual([49_000, 49_000, 49_000]);
  expect(pauses).toEqual([7, 7]);
  expect(job.completedPasses).toBe(1);
});
