import { ChatError } from '@chat/protocol';

/**
 * Sends one batch to one peer. Resolve with nothing when every item succeeded, or with one
 * entry per item (undefined = delivered, a ChatError = that item failed). A rejection fails
 * every item of the batch with that error (non-ChatErrors become INTERNAL).
 */
export type BatchSender<T> = (
  peer: string,
  items: readonly T[],
) => Promise<readonly (ChatError | undefined)[] | void>;

/** Told the outcome of every item, once: `error` undefined means delivered. */
export type BatchResultListener<T> = (peer: string, item: T, error: ChatError | undefined) => void;

export interface DeliveryBatcherOptions<T> {
  readonly send: BatchSender<T>;
  readonly onResult: BatchResultListener<T>;
  /** Most items in one call; more items for a peer in one tick make several calls. Default 256. */
  readonly maxBatch?: number;
  /** Runs the flush after the current tick's work. Default setImmediate. */
  readonly schedule?: (fn: () => void) => void;
}

/**
 * Collects items per peer during one tick and sends each peer's items as one call (split at
 * `maxBatch`). Forwarding is a fast path: callers log failures, the inbox is the truth.
 *
 * @example
 * const batcher = new DeliveryBatcher<Delivery>({
 *   send: (peer, deliveries) => pool.peer(peer, addressOf(peer)).call(Deliver, { deliveries }).then(() => {}),
 *   onResult: (peer, d, err) => { if (err) log.warn({ peer, user: d.userId, err }, 'forward failed'); },
 * });
 * for (const d of deliveries) batcher.add(ring.owner(d.userId)!, d);
 */
export class DeliveryBatcher<T> {
  private readonly options: Required<DeliveryBatcherOptions<T>>;
  private pendingItems = new Map<string, T[]>();
  private scheduled = false;
  private readonly running = new Set<Promise<void>>();

  constructor(options: DeliveryBatcherOptions<T>) {
    const maxBatch = options.maxBatch ?? 256;
    if (!(Number.isInteger(maxBatch) && maxBatch >= 1))
      throw new RangeError('maxBatch must be >= 1');
    this.options = Object.freeze({ schedule: setImmediate, ...options, maxBatch });
  }

  /** Items waiting for the next flush, over all peers. */
  get size(): number {
    let n = 0;
    for (const items of this.pendingItems.values()) n += items.length;
    return n;
  }

  add(peer: string, item: T): void {
    const items = this.pendingItems.get(peer);
    if (items === undefined) this.pendingItems.set(peer, [item]);
    else items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      this.options.schedule(() => this.flush());
    }
  }

  /** Sends everything collected so far now, without waiting for the scheduled flush. */
  flush(): void {
    this.scheduled = false;
    const batches = this.pendingItems;
    this.pendingItems = new Map();
    for (const [peer, items] of batches) {
      for (let i = 0; i < items.length; i += this.options.maxBatch) {
        this.sendBatch(peer, items.slice(i, i + this.options.maxBatch));
      }
    }
  }

  /** Flushes, then waits until every batch sent so far has an outcome (for shutdown and tests). */
  async drain(): Promise<void> {
    this.flush();
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private sendBatch(peer: string, items: T[]): void {
    let outcome: Promise<readonly (ChatError | undefined)[] | void>;
    try {
      outcome = this.options.send(peer, items);
    } catch (err) {
      outcome = Promise.reject(err);
    }
    const done = outcome.then(
      (errors) =>
        items.forEach((item, i) => this.report(peer, item, errors ? errors[i] : undefined)),
      (err: unknown) => {
        const error = err instanceof ChatError ? err : new ChatError('INTERNAL', String(err));
        for (const item of items) this.report(peer, item, error);
      },
    );
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
  }

  private report(peer: string, item: T, error: ChatError | undefined): void {
    try {
      this.options.onResult(peer, item, error);
    } catch {
      // A throwing listener must not stop the other items' reports.
    }
  }
}
