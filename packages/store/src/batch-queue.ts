/**
 * The queue behind group commit: items pushed in the same tick go out together, at most
 * `maxConcurrent` batches run at once, and whatever arrives meanwhile waits to form the next,
 * larger batch. At low load a batch is one item and goes at once. Under load (the last batch
 * held more than one item) a short linger lets a batch fill before it goes: every statement
 * costs a round trip and a commit, on both sides, whatever it carries.
 */
export interface BatchQueueOptions {
  /** Most items in one batch. */
  readonly maxBatchSize: number;
  /** Most batches running at once. */
  readonly maxConcurrent: number;
  /** Under load, how long a batch may wait to fill (default 0: never). */
  readonly lingerMs?: number;
  /** A batch this full goes without lingering (default 32). */
  readonly lingerFullAt?: number;
}

/**
 * Nagle's idea for statements: once batches form on their own (the last one held at least
 * `denseFrom` items: traffic is dense), hold a batch back up to `ms` until `fullAt` items are
 * queued. At low load nothing waits. Pure.
 */
export class Linger {
  private dense = false;

  constructor(
    readonly ms: number,
    readonly fullAt: number,
    readonly denseFrom = 3,
  ) {}

  /** Whether `queued` items should wait for more. */
  shouldWait(queued: number): boolean {
    return this.ms > 0 && this.dense && queued < this.fullAt;
  }

  /** A batch of `size` items went out. */
  sent(size: number): void {
    this.dense = size >= this.denseFrom;
  }
}

/**
 * @example
 * const queue = new BatchQueue<Job>((jobs) => runAllInOneStatement(jobs), { maxBatchSize: 256, maxConcurrent: 2 });
 * queue.push(job); // settled by runAllInOneStatement
 */
export class BatchQueue<T> {
  private readonly items: T[] = [];
  private running = 0;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];
  private readonly linger: Linger;
  private lingerTimer: NodeJS.Timeout | undefined;

  /** `run` settles every item of its batch itself and must not reject. */
  constructor(
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly options: BatchQueueOptions,
  ) {
    if (!(options.maxBatchSize >= 1 && options.maxConcurrent >= 1)) {
      throw new RangeError('maxBatchSize and maxConcurrent must be at least 1');
    }
    this.linger = new Linger(options.lingerMs ?? 0, options.lingerFullAt ?? 32);
  }

  push(item: T): void {
    this.items.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Items waiting for a batch (not those of batches already running). */
  get queued(): number {
    return this.items.length;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.running === 0 && this.items.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(force = false): void {
    while (this.running < this.options.maxConcurrent && this.items.length > 0) {
      if (!force && this.linger.shouldWait(this.items.length)) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = undefined;
          this.pump(true);
        }, this.linger.ms);
        return;
      }
      force = false;
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
      const batch = this.items.splice(0, this.options.maxBatchSize);
      this.linger.sent(batch.length);
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.items.length === 0) {
          for (const wake of this.idleWaiters.splice(0)) wake();
        }
      });
    }
  }
}

/** One batched store statement, as the metrics see it (`chat_pg_batch_size{kind}`). */
export interface BatchInfo {
  /** What the statement wrote: `send` (chat step), `fanout` (user step), `connect`, ... */
  readonly kind: string;
  /** Items in the statement. */
  readonly size: number;
  /** From sending it to its result, milliseconds. */
  readonly durationMs: number;
  readonly committed: boolean;
}
