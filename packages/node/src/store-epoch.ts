/**
 * The node's view of the store epoch (`@chat/store` store-epoch.ts): read at start, checked on
 * every new database connection (the pool's `checkConnection` hook) and every `intervalMs`.
 *
 * After a restore or a failover every connection the node had is broken, so the first
 * statement it runs against the other database is on a new connection, and the change is seen
 * there, before that statement runs. The periodic check covers changes that leave connections
 * alone (`new-epoch`, a dump restored into the live database, a pooler in between).
 */
import type { RawQuery } from '@chat/store';
import { StoreEpochChangedError, readStoreEpochWith } from '@chat/store';
import type { Logger } from 'pino';

export interface StoreEpochChange {
  readonly previous: string;
  readonly current: string;
}

export interface StoreEpochWatchOptions {
  /** Reads the epoch over the node's pool. */
  readonly read: () => Promise<string>;
  /** How often it is read (CHAT_EPOCH_CHECK_MS). */
  readonly intervalMs: number;
  readonly log: Logger;
}

/**
 * @example
 * const watch = new StoreEpochWatch({ read: () => readStoreEpoch(db), intervalMs: 5000, log });
 * const db = createDatabase(url, { checkConnection: watch.checkConnection });
 * await watch.start();
 * watch.onChange(() => node.storeEpochChanged());
 */
export class StoreEpochWatch {
  private epoch: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly listeners = new Set<(change: StoreEpochChange) => void>();

  constructor(private readonly options: StoreEpochWatchOptions) {}

  /** The epoch the node runs under; undefined before `start`. */
  get current(): string | undefined {
    return this.epoch;
  }

  /** Reads the epoch (rejects when it cannot be read) and starts the periodic check. */
  async start(): Promise<string> {
    const epoch = await this.options.read();
    this.observe(epoch);
    this.timer ??= setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
    return epoch;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Calls `listener` (synchronously) on every change; returns a disposer. */
  onChange(listener: (change: StoreEpochChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * For `createDatabase({ checkConnection })`. A new connection that finds another epoch is
   * refused once the change was handled: whatever asked for it started under the old epoch
   * (a cursor write, a send of a session being closed) and must not run on the new database.
   * Before `start` (migrations) it checks nothing.
   */
  readonly checkConnection = async (query: RawQuery): Promise<void> => {
    const known = this.epoch;
    if (known === undefined) return;
    const epoch = await readStoreEpochWith(query);
    if (this.observe(epoch)) throw new StoreEpochChangedError(known, epoch);
  };

  /** Reads the epoch now; a failure is logged and left to the next check. */
  check(): Promise<void> {
    this.checking ??= this.options
      .read()
      .then(
        (epoch) => void this.observe(epoch),
        (err: unknown) => {
          // A connection that saw the change itself was refused: nothing more to do here.
          if (!(err instanceof StoreEpochChangedError)) {
            this.options.log.debug({ err }, 'store epoch not readable; checking again later');
          }
        },
      )
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** Adopts an epoch read somewhere; true, after the listeners ran, when it is a new one. */
  observe(epoch: string): boolean {
    const previous = this.epoch;
    if (previous === epoch) return false;
    this.epoch = epoch;
    if (previous === undefined) return false;
    this.options.log.warn(
      { previous, current: epoch },
      'store epoch changed (database restored or failed over): devices resync',
    );
    for (const listener of [...this.listeners]) {
      try {
        listener({ previous, current: epoch });
      } catch (err) {
        this.options.log.error({ err }, 'store epoch listener threw');
      }
    }
    return true;
  }
}
