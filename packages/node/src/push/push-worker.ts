/**
 * The delivery worker (issue 18): on every node, sends the due outbox rows of the users this
 * node owns. Rows live in Postgres keyed by user, so when a user moves (a drain, a failover)
 * the new owner's worker finds them there. A row is leased before it is sent
 * (PgPushStore.claimDue): in a moment when two nodes both believe they own a user, only one
 * holds the lease. A node that dies after sending and before recording it leaves the lease to
 * end and the row to be sent again: at least once, with the same collapse id, which the device
 * shows as one notification.
 *
 * Each provider kind has its own concurrency limit; a provider's `retry` is scheduled by
 * `retryAfterFailure` (its Retry-After first), `gone` removes the target, `failed` drops the
 * notification. The worker is off the message path: a slow provider only slows notifications.
 */
import type { PushKind, PushProvider, PushProviders, PushResult, PushTarget } from '@chat/push';
import type { ClaimedPush, OutboxStats, PushRecipient } from '@chat/store';
import type { PushTargetSpec } from '@chat/protocol';
import type { Logger } from 'pino';
import { Limiter } from './limiter';
import { notificationFor } from './notification';
import type { RetryPolicy } from './schedule';
import { retryAfterFailure } from './schedule';

/** What the worker needs of the store (PgPushStore). */
export interface PushOutboxStore {
  claimDue(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    isOwned: (userId: string) => boolean,
  ): Promise<ClaimedPush[]>;
  recipient(userId: string): Promise<PushRecipient>;
  sent(
    push: ClaimedPush,
    owner: string,
    now: number,
    windowMs: number,
    error?: string,
  ): Promise<void>;
  retryAt(push: ClaimedPush, owner: string, dueAt: number, error: string): Promise<void>;
  removeGoneTarget(userId: string, deviceId: string, target: PushTargetSpec): Promise<boolean>;
  pruneIdle(before: number): Promise<number>;
  stats(): Promise<OutboxStats>;
}

/** Why a notification did not go, as counted in `chat_push_failed_total{reason}`. */
export type PushFailure = 'retry' | 'gone' | 'failed' | 'gave_up' | 'not_configured';

export interface PushWorkerEvents {
  sent(kind: PushKind): void;
  failed(kind: PushKind, reason: PushFailure): void;
}

export interface PushWorkerOptions {
  /** At most one notification per device and chat this often (the coalescing window). */
  readonly windowMs: number;
  /** How long a claimed row is this node's; above the providers' request timeout. */
  readonly leaseMs: number;
  /** How often the worker looks for due rows when the last look found fewer than `batch`. */
  readonly pollMs: number;
  /** Rows claimed per look. */
  readonly batch: number;
  /** Requests in flight per provider kind. */
  readonly concurrency: number;
  readonly retry: RetryPolicy;
  /** How long providers may keep trying to reach the device. */
  readonly ttlSeconds: number;
  /** How often queue depth and age are read for metrics (and idle rows pruned). */
  readonly statsMs: number;
}

export interface PushWorkerDeps {
  readonly nodeId: string;
  readonly store: PushOutboxStore;
  /** The configured providers (@chat/push's createPushProviders). */
  readonly providers: Pick<PushProviders, 'providerFor'>;
  readonly isOwned: (userId: string) => boolean;
  readonly now: () => number;
  readonly log: Logger;
  readonly options: PushWorkerOptions;
  readonly events?: PushWorkerEvents;
  /** A target was removed because its provider said it is gone (the targets cache forgets it). */
  readonly onTargetGone?: (userId: string) => void;
}

/** What `/v1/stats` and `chatctl status` show of the outbox. */
export interface PushWorkerFigures {
  readonly depth: number;
  readonly oldestAgeMs: number;
  readonly sent: number;
  readonly failed: number;
  readonly inflight: number;
}

export class PushWorker {
  private readonly limiters = new Map<PushKind, Limiter>();
  private timer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastStats: OutboxStats = { depth: 0, oldestQueuedAt: null };
  private sentCount = 0;
  private failedCount = 0;
  /** Rows claimed by the loop and not settled yet (sent, rescheduled, or left to their lease). */
  private inflightRows = 0;
  private readonly sending = new Set<Promise<void>>();
  /** Wakes a loop that waits for room (every claimed row in flight). */
  private roomFreed: (() => void) | undefined;

  constructor(private readonly deps: PushWorkerDeps) {}

  start(): void {
    this.schedule(0);
    const refresh = (): void => {
      void this.refreshStats();
    };
    this.statsTimer = setInterval(refresh, this.deps.options.statsMs);
    this.statsTimer.unref();
    refresh();
  }

  /**
   * One look for tests, with their clock: claims due rows and sends them, and returns how many
   * rows it claimed once every one is settled.
   */
  async tick(): Promise<number> {
    const claimedAt = this.deps.now();
    const claimed = await this.claim(this.deps.options.batch, claimedAt);
    await this.sendClaimed(claimed, claimedAt);
    return claimed.length;
  }

  private claim(limit: number, now: number): Promise<ClaimedPush[]> {
    const { store, nodeId, options } = this.deps;
    return store.claimDue(nodeId, now, options.leaseMs, limit, this.deps.isOwned);
  }

  /** Sends claimed rows, user by user; `settled` is called as each row is done with. */
  private async sendClaimed(
    claimed: readonly ClaimedPush[],
    claimedAt: number,
    settled: () => void = () => undefined,
  ): Promise<void> {
    const byUser = new Map<string, ClaimedPush[]>();
    for (const row of claimed) {
      const list = byUser.get(row.userId);
      if (list === undefined) byUser.set(row.userId, [row]);
      else list.push(row);
    }
    await Promise.all(
      [...byUser].map(([user, rows]) => this.sendUser(user, rows, claimedAt, settled)),
    );
  }

  figures(): PushWorkerFigures {
    let inflight = 0;
    for (const limiter of this.limiters.values()) inflight += limiter.active;
    const oldest = this.lastStats.oldestQueuedAt;
    return {
      depth: this.lastStats.depth,
      oldestAgeMs: oldest === null ? 0 : Math.max(0, this.deps.now() - oldest),
      sent: this.sentCount,
      failed: this.failedCount,
      inflight,
    };
  }

  /** Reads queue depth and age (and prunes rows idle past their window). */
  async refreshStats(): Promise<void> {
    try {
      this.lastStats = await this.deps.store.stats();
      await this.deps.store.pruneIdle(this.deps.now() - this.deps.options.windowMs);
    } catch (err) {
      this.deps.log.debug({ err }, 'push outbox figures unavailable');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.statsTimer !== undefined) clearInterval(this.statsTimer);
    this.roomFreed?.();
    await this.running;
    await Promise.all(this.sending);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.loop();
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Claims as many due rows as there is room for (`batch` in flight at most) and sends them
   * without waiting: a provider that hangs holds only its own rows (and its kind's concurrency),
   * not the next look, nor the other providers' notifications.
   */
  private async loop(): Promise<void> {
    const { batch, pollMs } = this.deps.options;
    const room = batch - this.inflightRows;
    if (room <= 0) {
      // Every claimed row is in flight: look again when one settles, or after a poll.
      await new Promise<void>((resolve) => {
        this.roomFreed = resolve;
        setTimeout(resolve, pollMs).unref();
      });
      this.roomFreed = undefined;
      this.schedule(0);
      return;
    }
    let claimed: ClaimedPush[] = [];
    const claimedAt = this.deps.now();
    try {
      claimed = await this.claim(room, claimedAt);
    } catch (err) {
      this.deps.log.warn({ err }, 'push worker pass failed');
    }
    this.inflightRows += claimed.length;
    const sending = this.sendClaimed(claimed, claimedAt, () => {
      this.inflightRows -= 1;
      this.roomFreed?.();
    });
    this.sending.add(sending);
    void sending.finally(() => this.sending.delete(sending));
    this.schedule(claimed.length >= room ? 0 : pollMs);
  }

  private async sendUser(
    user: string,
    rows: readonly ClaimedPush[],
    claimedAt: number,
    settled: () => void,
  ): Promise<void> {
    let recipient: PushRecipient | undefined;
    try {
      recipient = await this.deps.store.recipient(user);
    } catch (err) {
      this.deps.log.warn({ err, user }, 'cannot read push recipient; the lease will end');
    }
    await Promise.all(
      rows.map(async (row) => {
        try {
          if (recipient !== undefined) await this.sendRow(row, recipient, claimedAt);
        } finally {
          settled();
        }
      }),
    );
  }

  private async sendRow(
    row: ClaimedPush,
    recipient: PushRecipient,
    claimedAt: number,
  ): Promise<void> {
    const { store, nodeId, options } = this.deps;
    const target = recipient.targets.get(row.deviceId);
    try {
      // The device removed its target since: nothing to send, nothing left to owe.
      if (target === undefined) {
        await store.sent(row, nodeId, this.deps.now(), options.windowMs, 'no target');
        return;
      }
      const provider = this.deps.providers.providerFor(target);
      if (provider === undefined) {
        this.count(target.kind, 'not_configured');
        await store.sent(
          row,
          nodeId,
          this.deps.now(),
          options.windowMs,
          `${target.kind} is not configured`,
        );
        return;
      }
      const notification = notificationFor({
        chatId: row.chatId,
        from: row.from,
        badge: recipient.badges.get(row.deviceId) ?? row.pending,
        previews: recipient.previews,
        ttlSeconds: options.ttlSeconds,
      });
      const result = await this.limiterFor(target.kind).run(async () =>
        // Waited for its provider past half its lease: left for the claim after the lease
        // ends (here or on the user's next owner) rather than sent late and then again.
        this.deps.now() - claimedAt > options.leaseMs / 2
          ? undefined
          : this.attempt(provider, target, notification),
      );
      if (result === undefined) return;
      await this.settle(row, target, result);
    } catch (err) {
      this.deps.log.warn(
        { err, user: row.userId },
        'push notification not recorded; the lease will end',
      );
    }
  }

  private async attempt(
    provider: PushProvider,
    target: PushTarget,
    notification: Parameters<PushProvider['send']>[1],
  ): Promise<PushResult> {
    try {
      return await provider.send(target, notification);
    } catch (err) {
      // A provider client should answer with a result; a throw is a fault on our side or the
      // network's, worth another try.
      return { outcome: 'retry', reason: err instanceof Error ? err.message : 'provider error' };
    }
  }

  private async settle(row: ClaimedPush, target: PushTarget, result: PushResult): Promise<void> {
    const { store, nodeId, options } = this.deps;
    const now = this.deps.now();
    switch (result.outcome) {
      case 'sent':
        this.sentCount += 1;
        this.deps.events?.sent(target.kind);
        await store.sent(row, nodeId, now, options.windowMs);
        return;
      case 'gone':
        this.count(target.kind, 'gone');
        await store.removeGoneTarget(row.userId, row.deviceId, target);
        this.deps.onTargetGone?.(row.userId);
        await store.sent(row, nodeId, now, options.windowMs, result.reason);
        return;
      case 'failed':
        this.count(target.kind, 'failed');
        this.deps.log.warn(
          { user: row.userId, kind: target.kind, reason: result.reason },
          'push notification refused; not retried',
        );
        await store.sent(row, nodeId, now, options.windowMs, result.reason);
        return;
      case 'retry': {
        const next = retryAfterFailure(options.retry, row.attempts, now, result.retryAfterMs);
        if (next.giveUp) {
          this.count(target.kind, 'gave_up');
          await store.sent(row, nodeId, now, options.windowMs, `gave up: ${result.reason}`);
        } else {
          this.count(target.kind, 'retry');
          await store.retryAt(row, nodeId, next.atMs, result.reason);
        }
        return;
      }
    }
  }

  private limiterFor(kind: PushKind): Limiter {
    let limiter = this.limiters.get(kind);
    if (limiter === undefined) {
      limiter = new Limiter(this.deps.options.concurrency);
      this.limiters.set(kind, limiter);
    }
    return limiter;
  }

  private count(kind: PushKind, reason: PushFailure): void {
    this.failedCount += 1;
    this.deps.events?.failed(kind, reason);
  }
}
