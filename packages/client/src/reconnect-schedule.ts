/**
 * When the next connect attempt goes: after a backoff delay (at least a refused upgrade's
 * Retry-After), after a short random delay to follow a `moved`, or at once when the page comes
 * back online and into view; never while it is hidden or offline (`reconnect.pageSignals`).
 * Past `reconnect.maxAttempts` failed attempts in a row it gives up.
 */
import { Backoff } from './backoff';
import { ConnectionError } from './errors';
import type { ResolvedOptions, TimerHandle } from './options';
import type { Disposer } from './typed-events';

/** Why a reconnect is needed: the reason of the terminal state when it is not allowed. */
export interface ReconnectCause {
  readonly why: string;
  readonly closeCode?: number;
  readonly httpStatus?: number;
}

/** What the schedule asks of the connection lifecycle. */
export interface ReconnectHooks {
  /** Make a connect attempt now. */
  attempt(): void;
  /** A reconnect waits (a timer, or the page): the app sees `reconnecting`. */
  waiting(): void;
  /** No attempt is allowed any more: the client stops with `err`. */
  giveUp(err: ConnectionError): void;
}

/**
 * @example
 * const schedule = new ReconnectSchedule(opts, { attempt, waiting, giveUp });
 * schedule.watchPage();
 * schedule.afterFailure(0, { why: 'connection closed (1006)' });
 */
export class ReconnectSchedule {
  private readonly backoff: Backoff;
  private timer: TimerHandle | undefined;
  /** A reconnect waits for the page to be visible and online (no timer meanwhile). */
  private parked = false;
  private pageSignalsOff: Disposer | undefined;
  private stopped = false;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly hooks: ReconnectHooks,
  ) {
    this.backoff = new Backoff(
      { baseMs: opts.backoffBaseMs, maxMs: opts.backoffMaxMs },
      opts.random,
    );
  }

  /** Listens to the page signals, if any: a waiting reconnect goes once the page is back. */
  watchPage(): void {
    this.pageSignalsOff = this.opts.reconnect.pageSignals?.onChange(() => this.onPageChange());
  }

  /**
   * A connection was lost or could not be opened: the next attempt after a backoff delay of
   * at least `minDelayMs`, or none past `reconnect.maxAttempts` failed attempts in a row.
   */
  afterFailure(minDelayMs: number, cause: ReconnectCause): void {
    if (this.stopped) return;
    const { maxAttempts } = this.opts.reconnect;
    if (this.backoff.attempts >= maxAttempts) {
      const message =
        maxAttempts === 0
          ? `${cause.why}; reconnect is off`
          : `${cause.why}; gave up after ${maxAttempts} reconnect attempts`;
      return this.hooks.giveUp(new ConnectionError(message, cause.closeCode, cause.httpStatus));
    }
    this.clearTimer();
    if (!this.pageAllowsConnecting()) {
      this.parked = true;
      this.hooks.waiting();
      this.opts.logger.debug({}, 'page hidden or offline: reconnect waits for it');
      return;
    }
    const delay = Math.max(this.backoff.next(), minDelayMs);
    this.hooks.waiting();
    this.opts.logger.debug({ delay, attempt: this.backoff.attempts }, 'chat client reconnect');
    this.attemptIn(delay);
  }

  /**
   * The next attempt follows a `moved`, after a short random delay which spreads the users a
   * drain moves at the same moment.
   */
  followMoved(): void {
    this.clearTimer();
    this.attemptIn(Math.floor(this.opts.random() * this.opts.movedJitterMs));
  }

  /** Ready: failed attempts count from 0 again. */
  succeeded(): void {
    this.backoff.reset();
  }

  /** The client stopped: no attempt any more. */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.parked = false;
    this.pageSignalsOff?.();
    this.pageSignalsOff = undefined;
  }

  private attemptIn(delay: number): void {
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      this.hooks.attempt();
    }, delay);
  }

  private pageAllowsConnecting(): boolean {
    const signals = this.opts.reconnect.pageSignals;
    return signals === undefined || (!signals.hidden && signals.online);
  }

  /** Online again, or in view again: a reconnect that waits goes now. */
  private onPageChange(): void {
    const waiting = this.parked || this.timer !== undefined;
    if (this.stopped || !waiting || !this.pageAllowsConnecting()) return;
    this.parked = false;
    this.clearTimer();
    this.opts.logger.debug({}, 'page online and visible: reconnecting now');
    this.hooks.attempt();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
