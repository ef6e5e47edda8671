/**
 * The fan-out sweeper (docs/durable-path.md): on one node at a time (the winner of the etcd
 * election `retention-cleanup` runs it too; a single node without etcd runs it itself), every
 * `intervalMs` it finishes
 * the fan-out owed by nodes whose fan-out mark went stale (crashed, frozen, cut off from
 * Postgres for longer than `staleMs`): every message they acked but had not yet appended to
 * every recipient's inbox gets there, exactly once. The appended events are pushed like any.
 */
import type { Logger } from 'pino';
import type { Clock } from './clock';

export interface FanoutSweepStore {
  sweepStale(
    now: number,
    staleMs: number,
    forgetMs: number,
  ): Promise<{ nodes: number; messages: number; events: number }>;
}

export interface FanoutSweeperOptions {
  readonly store: FanoutSweepStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly intervalMs: number;
  /** A mark not written for this long belongs to a node that stopped. */
  readonly staleMs: number;
  /** A stopped node's mark is dropped after this long (default one day). */
  readonly forgetMs?: number;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * @example
 * const sweeper = new FanoutSweeper({ store, clock, log, intervalMs: 2000, staleMs: 15_000 });
 * sweeper.start();
 * await sweeper.stop();
 */
export class FanoutSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;

  constructor(private readonly options: FanoutSweeperOptions) {}

  start(): void {
    if (this.active) return;
    this.active = true;
    this.options.log.info(
      { staleMs: this.options.staleMs },
      'fan-out sweeper running on this node',
    );
    this.schedule();
  }

  async stop(): Promise<void> {
    this.active = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sweep now. */
  async runOnce(): Promise<{ nodes: number; messages: number; events: number }> {
    return this.options.store.sweepStale(
      this.options.clock.now(),
      this.options.staleMs,
      this.options.forgetMs ?? DAY_MS,
    );
  }

  private schedule(): void {
    if (!this.active) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runOnce()
        .then(
          () => undefined,
          (err: unknown) => this.options.log.warn({ err }, 'fan-out sweep failed'),
        )
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }
}
