/**
 * The retention cleanup job (issue 8): deletes what the server no longer needs, in small
 * batches with a pause between them, on one node at a time (etcd election
 * `retention-cleanup`; a single node without etcd just runs it). A pass counts from `passTime`
 * (the node passes the database's clock, so that whichever node leads, and however its own
 * clock is off, the same rows expire at the same moment), or the injected clock; the pause comes
 * from an injected sleep.
 *
 * One pass, in this order (each step repeats its batch until a short one, bounded):
 * 1. messages delivered to every recipient (their delivered watermarks passed them), fanned
 *    out and older than the delivered grace period: their text goes, the row stays for read
 *    receipts; those every recipient has also read are deleted whole;
 *    then attachments whose message reached every recipient and that every recipient device
 *    fetched, or whose attachment grace period after that delivery passed: their index rows go
 *    and their objects are queued (step 8);
 * 2. inbox events older than the retention period, delivered or not;
 * 3. messages older than it, emptied or not, read or not (their receipts go with them);
 * 4. attachment index rows older than it that no message carries, and fetch records older
 *    than it;
 * 5. devices inactive for longer than it (tombstoned, so they are told `reset` on return);
 * 6. tombstones older than `tombstoneFactor` retention periods;
 * 7. receipt watermarks kept for away devices, unchanged for the retention period;
 * 8. attachment objects queued by steps 1, 3 and 4, removed from object storage.
 */
import type { Election } from '@chat/cluster';
import type { RetentionStore } from '@chat/store';
import type { Logger } from 'pino';
import type { Clock } from './clock';
import type { RetentionConfig } from './retention-config';

/** What one pass removed. */
export interface RetentionReport {
  /** Messages whose content was removed because every device got them (rows kept for receipts). */
  deliveredContent: number;
  /** Messages deleted because, delivered everywhere, every recipient also read them. */
  readMessages: number;
  /** Attachments released: fetched by every recipient device, or kept their grace period. */
  releasedAttachments: number;
  /** Inbox events deleted by age. */
  expiredEvents: number;
  /** Messages deleted by age. */
  expiredMessages: number;
  /** Attachment index rows deleted by age. */
  attachmentIndex: number;
  /** Records of attachment fetches deleted by age. */
  attachmentFetches: number;
  devices: number;
  /** Inbox events freed because an expired device no longer held them. */
  freedEvents: number;
  tombstones: number;
  /** Receipt watermarks kept for away devices, deleted by age. */
  receiptMarks: number;
  /** Attachment objects deleted from object storage. */
  objects: number;
}

export type RetentionKind = keyof RetentionReport;

/** Deletes attachment objects; absent when media is off (queued keys then wait). */
export interface ObjectRemover {
  removeObjects(keys: readonly string[]): Promise<void>;
}

export interface RetentionDeps {
  readonly store: RetentionStore;
  readonly objects?: ObjectRemover;
  readonly config: RetentionConfig;
  readonly clock: Clock;
  /** When a pass starts, by the clock that decides what has expired; `clock.now()` by default. */
  readonly passTime?: () => Promise<number>;
  readonly log: Logger;
  /** Called after each pass with what it removed (metrics). */
  readonly onPass?: (report: RetentionReport, durationMs: number) => void;
  /** Called when the job starts or stops running on this node (metrics). */
  readonly onActive?: (active: boolean) => void;
  /** The pause between batches; setTimeout by default. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Most batches one step runs in one pass: the loops are bounded, the rest waits a pass. */
const MAX_BATCHES_PER_STEP = 10_000;
/** Tombstones live this many retention periods, so a device away even longer is just new. */
export const TOMBSTONE_FACTOR = 12;

/** The cut-off times of a pass at `now` (pure). */
export function retentionCutoffs(
  now: number,
  config: Pick<RetentionConfig, 'retentionMs' | 'deliveredGraceMs'>,
): { expiredBefore: number; deliveredBefore: number; tombstonesBefore: number } {
  return {
    expiredBefore: now - config.retentionMs,
    deliveredBefore: now - config.deliveredGraceMs,
    tombstonesBefore: now - config.retentionMs * TOMBSTONE_FACTOR,
  };
}

export function emptyReport(): RetentionReport {
  return {
    deliveredContent: 0,
    readMessages: 0,
    releasedAttachments: 0,
    expiredEvents: 0,
    expiredMessages: 0,
    attachmentIndex: 0,
    attachmentFetches: 0,
    devices: 0,
    freedEvents: 0,
    tombstones: 0,
    receiptMarks: 0,
    objects: 0,
  };
}

const defaultSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * @example
 * const job = new RetentionJob({ store: new PgRetentionStore(db), config, clock, log });
 * job.start();             // single node: runs every intervalMs
 * await job.runOnce();     // or one pass now
 * await job.stop();
 */
export class RetentionJob {
  private readonly sleep: (ms: number) => Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;
  /** Set by stop(): a pass in progress ends after its current batch. */
  private halted = false;
  private passes = 0;

  constructor(private readonly deps: RetentionDeps) {
    this.sleep = deps.sleep ?? defaultSleep;
  }

  /** True while the job is scheduled on this node (it leads, or runs alone). */
  get isActive(): boolean {
    return this.active;
  }

  /** Passes completed since the process started. */
  get completedPasses(): number {
    return this.passes;
  }

  /** Runs a pass now and then every intervalMs until stop(). */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.halted = false;
    this.deps.onActive?.(true);
    this.deps.log.info(
      { retentionMs: this.deps.config.retentionMs, intervalMs: this.deps.config.intervalMs },
      'retention cleanup running on this node',
    );
    this.schedule(0);
  }

  /** Stops scheduling and waits for a pass in progress to end its current batch. */
  async stop(): Promise<void> {
    if (this.active) {
      this.deps.log.info('retention cleanup stopped on this node');
      this.deps.onActive?.(false);
    }
    this.active = false;
    this.halted = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One full pass; returns what it removed. Throws what the store throws. */
  async runOnce(): Promise<RetentionReport> {
    const { store, config, clock } = this.deps;
    const clockStart = clock.now();
    const started = (await this.deps.passTime?.()) ?? clockStart;
    const cut = retentionCutoffs(started, config);
    const report = emptyReport();
    const limit = config.batchSize;

    let after = '0';
    await this.batches(async () => {
      const batch = await store.cleanDelivered(after, cut.deliveredBefore, started, limit);
      report.deliveredContent += batch.emptied;
      report.readMessages += batch.deleted;
      if (batch.lastId === null) return false;
      after = batch.lastId;
      return true;
    });
    let position = '';
    await this.batches(async () => {
      const batch = await store.releaseAttachments(
        position,
        started,
        config.attachmentGraceMs,
        limit,
      );
      report.releasedAttachments += batch.released;
      if (batch.lastPosition === null) return false;
      position = batch.lastPosition;
      return true;
    });
    await this.batches(async () => {
      const n = await store.deleteExpiredInbox(cut.expiredBefore, limit);
      report.expiredEvents += n;
      return n >= limit;
    });
    await this.batches(async () => {
      const gone = await store.deleteExpiredMessages(cut.expiredBefore, limit);
      report.expiredMessages += gone.messages;
      return gone.messages >= limit;
    });
    await this.batches(async () => {
      const n = await store.deleteExpiredAttachmentIndex(cut.expiredBefore, limit);
      report.attachmentIndex += n;
      return n >= limit;
    });
    await this.batches(async () => {
      const n = await store.deleteExpiredFetches(cut.expiredBefore, limit);
      report.attachmentFetches += n;
      return n >= limit;
    });
    await this.batches(async () => {
      const gone = await store.expireDevices(cut.expiredBefore, started, limit);
      report.devices += gone.devices;
      report.freedEvents += gone.events;
      return gone.devices >= limit;
    });
    await this.batches(async () => {
      const n = await store.pruneTombstones(cut.tombstonesBefore, limit);
      report.tombstones += n;
      return n >= limit;
    });
    await this.batches(async () => {
      const n = await store.deleteExpiredReceiptMarks(cut.expiredBefore, limit);
      report.receiptMarks += n;
      return n >= limit;
    });
    const objects = this.deps.objects;
    if (objects !== undefined) {
      await this.batches(async () => {
        const keys = await store.queuedObjectKeys(limit);
        if (keys.length === 0) return false;
        await objects.removeObjects(keys);
        await store.dequeueObjectKeys(keys);
        report.objects += keys.length;
        return keys.length >= limit;
      });
    }
    this.passes++;
    const durationMs = clock.now() - clockStart;
    this.deps.onPass?.(report, durationMs);
    if (Object.values(report).some((n) => n > 0)) {
      this.deps.log.info({ removed: report, durationMs }, 'retention cleanup pass');
    } else {
      this.deps.log.debug({ durationMs }, 'retention cleanup pass: nothing to remove');
    }
    return report;
  }

  /** Runs `step` while it says there is more (and the job is active), pausing in between. */
  private async batches(step: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < MAX_BATCHES_PER_STEP; i++) {
      if (!(await step())) return;
      if (this.halted) return;
      await this.sleep(this.deps.config.pauseMs);
    }
  }

  private schedule(delayMs: number): void {
    if (!this.active) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runOnce()
        .then(
          () => undefined,
          (err: unknown) => this.deps.log.warn({ err }, 'retention cleanup pass failed'),
        )
        .finally(() => {
          this.running = undefined;
          this.schedule(this.deps.config.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}

/**
 * Runs the jobs while this node leads the election; returns a disposer.
 *
 * @example
 * const stop = runWhileLeader(cluster.elect('retention-cleanup'), [retention, sweeper]);
 */
export function runWhileLeader(
  election: Election,
  jobs: readonly { start(): void; stop(): Promise<void> }[],
): () => Promise<void> {
  const startAll = (): void => jobs.forEach((job) => job.start());
  const stopAll = async (): Promise<void> => {
    await Promise.all(jobs.map((job) => job.stop()));
  };
  const disposers = [election.onLeader(startAll), election.onFollower(() => void stopAll())];
  if (election.isLeader) startAll();
  return async () => {
    for (const dispose of disposers) dispose();
    await stopAll();
    await election.close();
  };
}
