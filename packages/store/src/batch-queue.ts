/**
 * The queue behind group commit: items pushed in the same tick go out together, at most
 * `maxConcurrent` batches run at once, and whatever arrives meanwhile waits to form the next,
 * larger batch. There is no timer: at low load a batch is one item and goes at once; batches
 * grow only when the database is the bottleneck, which is when they help.
 */
export interface BatchQueueOptions {
  /** Most items in one batch. */
  readonly maxBatchSize: number;
  /** Most batches running at once. */
  readonly maxConcurrent: number;
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

  /** `run` settles every item of its batch itself and must not reject. */
  constructor(
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly options: BatchQueueOptions,
  ) {
    if (!(options.maxBatchSize >= 1 && options.maxConcurrent >= 1)) {
      throw new RangeError('maxBatchSize and maxConcurrent must be at least 1');
    }
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

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.running === 0 && this.items.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.options.maxConcurrent && this.items.length > 0) {
      const batch = this.items.splice(0, this.options.maxBatchSize);
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
