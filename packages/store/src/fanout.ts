/**
 * The node's side of fan-out (docs/durable-path.md): after a chat step committed, the events
 * for each recipient's inbox are appended by user steps, batched (one statement per batch, at
 * most `maxConcurrent` in flight), and handed to `onDeliveries` for pushing once committed.
 *
 * - Order: a user's events are appended in the order they were queued; an event whose user has
 *   one in a batch still running waits for the next batch.
 * - Nothing is dropped: a failed batch goes back to the front of the queue and is retried with
 *   backoff (the messages are acked already and must reach their inboxes).
 * - The fan-out mark: every message is registered here from the moment its time is taken,
 *   before its chat step, until its last event committed. `upto()` is the oldest of those
 *   times (or now), the promise the node writes to fanout_marks: everything it stored before
 *   that is in its recipients' inboxes.
 */
import { Linger } from './batch-queue';
import type { BatchInfo } from './batch-queue';
import type { StoreLogger } from './pool';
import type { Delivery } from './types';
import type { FanoutEvent } from './user-step';

export interface FanoutOptions {
  /** Appends one batch of events (appendEvents over the node's pool). */
  readonly append: (events: readonly FanoutEvent[]) => Promise<Delivery[]>;
  /** Committed events, for pushing to devices; must not throw. */
  readonly onDeliveries: (deliveries: readonly Delivery[]) => void;
  readonly now: () => number;
  readonly logger: StoreLogger;
  /** Most events per user step (default 512). */
  readonly maxBatchSize?: number;
  /** Most user steps in flight (default 2). */
  readonly maxConcurrent?: number;
  /** First retry delay after a failed batch, doubling up to 2 s (default 50 ms). */
  readonly retryMs?: number;
  /** Under load, how long a user step may wait to fill (default 0; see BatchQueue). */
  readonly lingerMs?: number;
  readonly onBatch?: (info: BatchInfo) => void;
}

/** A registered message: its time, and the events of it not committed yet. */
interface Pending {
  readonly createdAt: number;
  events: number;
  queued: boolean;
  /** Called when its events are all committed (or it was released). */
  done?: () => void;
}

interface QueuedEvent {
  readonly event: FanoutEvent;
  readonly owner: Pending;
}

/** Handle of a registered message (see `register`). */
export type FanoutTicket = object;

export class Fanout {
  private queue: QueuedEvent[] = [];
  private readonly pending = new Set<Pending>();
  private readonly busyUsers = new Map<string, number>();
  private running = 0;
  /** Events enqueued and not committed yet (see backlog). */
  private owed = 0;
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatchSize: number;
  private readonly maxConcurrent: number;
  private readonly retryMs: number;
  private readonly linger: Linger;
  private lingerTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: FanoutOptions) {
    this.maxBatchSize = options.maxBatchSize ?? 512;
    this.maxConcurrent = options.maxConcurrent ?? 1;
    this.retryMs = options.retryMs ?? 50;
    this.linger = new Linger(options.lingerMs ?? 0, 64);
  }

  /**
   * Events queued or being appended: a counter, not a sum over the pending messages (it is read
   * for every send, and a fan-out that fell behind must not cost more per event to catch up).
   */
  get backlog(): number {
    return this.owed;
  }

  /**
   * Registers a message about to be stored, with its created_at: until it is released (no
   * fan-out needed: refused, a dup) or its events are committed, upto() stays at or below it.
   */
  register(createdAt: number): FanoutTicket {
    const pending: Pending = { createdAt, events: 0, queued: false };
    this.pending.add(pending);
    return pending;
  }

  /** The message needs no fan-out from this node after all. */
  release(ticket: FanoutTicket): void {
    const pending = ticket as Pending;
    if (!pending.queued || pending.events === 0) this.finish(pending);
  }

  /** Queues the message's events; the ticket is released once they are all committed. */
  enqueue(ticket: FanoutTicket, events: readonly FanoutEvent[]): void {
    const owner = ticket as Pending;
    owner.queued = true;
    owner.events += events.length;
    this.owed += events.length;
    if (events.length === 0) {
      this.finish(owner);
      return;
    }
    for (const event of events) this.queue.push({ event, owner });
    this.schedule();
  }

  /** Resolves once the message's events are all committed (or it was released). */
  settled(ticket: FanoutTicket): Promise<void> {
    const pending = ticket as Pending;
    if (!this.pending.has(pending)) return Promise.resolve();
    return new Promise((resolve) => {
      const before = pending.done;
      pending.done = () => {
        before?.();
        resolve();
      };
    });
  }

  /** The fan-out mark: the oldest created_at still owed, or now when none is. */
  upto(): number {
    let oldest = this.options.now();
    for (const p of this.pending) if (p.createdAt < oldest) oldest = p.createdAt;
    return oldest;
  }

  /** Resolves once nothing is queued, running or registered. */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private finish(pending: Pending): void {
    this.pending.delete(pending);
    pending.done?.();
    if (this.pending.size === 0 && this.running === 0) {
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.retryTimer !== undefined) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(force = false): void {
    if (this.retryTimer !== undefined) return; // a failed batch waits for its retry
    while (this.running < this.maxConcurrent && this.queue.length > 0) {
      if (!force && this.linger.shouldWait(this.queue.length)) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = undefined;
          this.pump(true);
        }, this.linger.ms);
        return;
      }
      force = false;
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
      const batch = this.takeBatch();
      if (batch.length === 0) return; // every queued user is busy: a running batch pumps again
      this.linger.sent(batch.length);
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.pump();
        if (this.pending.size === 0 && this.running === 0) {
          for (const wake of this.idleWaiters.splice(0)) wake();
        }
      });
    }
  }

  /**
   * Takes queued events in order, passing over (and keeping behind) users with a batch running.
   * Looks no further than it needs to fill the batch: a long queue costs a copy, not a walk.
   */
  private takeBatch(): QueuedEvent[] {
    const batch: QueuedEvent[] = [];
    const held = new Set<string>();
    const rest: QueuedEvent[] = [];
    let i = 0;
    for (; i < this.queue.length && batch.length < this.maxBatchSize; i++) {
      const item = this.queue[i]!;
      const user = item.event.userId;
      if (!this.busyUsers.has(user) && !held.has(user)) {
        batch.push(item);
      } else {
        held.add(user);
        rest.push(item);
      }
    }
    this.queue = i === this.queue.length ? rest : rest.concat(this.queue.slice(i));
    for (const item of batch) {
      const user = item.event.userId;
      this.busyUsers.set(user, (this.busyUsers.get(user) ?? 0) + 1);
    }
    return batch;
  }

  private async run(batch: QueuedEvent[]): Promise<void> {
    const started = performance.now();
    let deliveries: Delivery[];
    try {
      deliveries = await this.options.append(batch.map((q) => q.event));
    } catch (err) {
      this.options.onBatch?.({
        kind: 'fanout',
        size: batch.length,
        durationMs: performance.now() - started,
        committed: false,
      });
      this.unbusy(batch);
      // Back to the front, in order; retried after a pause that grows while failures last.
      this.queue.unshift(...batch);
      this.failures++;
      const delay = Math.min(2000, this.retryMs * 2 ** Math.min(this.failures - 1, 6));
      this.options.logger.warn(
        { err, events: batch.length, retryInMs: delay },
        'fan-out failed; retrying',
      );
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, delay);
      return;
    }
    this.failures = 0;
    this.options.onBatch?.({
      kind: 'fanout',
      size: batch.length,
      durationMs: performance.now() - started,
      committed: true,
    });
    this.unbusy(batch);
    if (deliveries.length > 0) this.options.onDeliveries(deliveries);
    this.owed -= batch.length;
    for (const { owner } of batch) {
      owner.events--;
      if (owner.events === 0) this.finish(owner);
    }
  }

  private unbusy(batch: readonly QueuedEvent[]): void {
    for (const { event } of batch) {
      const n = (this.busyUsers.get(event.userId) ?? 1) - 1;
      if (n === 0) this.busyUsers.delete(event.userId);
      else this.busyUsers.set(event.userId, n);
    }
  }

  /** Stops retrying; what is queued stays owed (the fan-out mark keeps it for a sweeper). */
  close(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.lingerTimer);
    this.queue.length = 0;
  }
}
