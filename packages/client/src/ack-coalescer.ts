/** Cumulative ack coalescing, kept pure so that its timing rules are testable without sockets. */

export interface AckPolicy {
  /** Longest time an ack may wait for more events to coalesce with, in ms. */
  readonly maxDelayMs: number;
  /** Ack at once when this many delivered events are unacked. */
  readonly maxEvents: number;
}

export type AckDecision = 'now' | 'arm-timer' | 'wait';

/**
 * Coalesces cumulative acks: at most one per `maxDelayMs`, or at once after `maxEvents`
 * events. Pure: the caller owns the timer and the socket.
 *
 * @example
 * const decision = acks.delivered(events.length);
 * if (decision === 'now') sendAck(acks.take(seqs.lastContiguous));
 * else if (decision === 'arm-timer') setTimeout(onTimer, policy.maxDelayMs);
 */
export class AckCoalescer {
  private acked: number;
  private unacked = 0;
  private timerArmed = false;

  constructor(
    private readonly policy: AckPolicy,
    ackedSeq = 0,
  ) {
    this.acked = ackedSeq;
  }

  /** Highest seq acked so far on the current connection. */
  get lastAcked(): number {
    return this.acked;
  }

  /** Records `count` events handed to the app and says what to do about the ack. */
  delivered(count: number): AckDecision {
    if (count <= 0) return 'wait';
    this.unacked += count;
    if (this.unacked >= this.policy.maxEvents) return 'now';
    if (this.timerArmed) return 'wait';
    this.timerArmed = true;
    return 'arm-timer';
  }

  /** The coalescing timer fired. */
  timerFired(): void {
    this.timerArmed = false;
  }

  /**
   * The seq to ack now, or undefined when nothing new was delivered since the last ack. With
   * `force` (right after a sync page) the current seq is returned even if already acked.
   */
  take(lastContiguous: number, force = false): number | undefined {
    this.unacked = 0;
    if (!force && lastContiguous <= this.acked) return undefined;
    this.acked = Math.max(this.acked, lastContiguous);
    return lastContiguous;
  }

  /** Whether a timer is outstanding (the caller should cancel it on disconnect). */
  get pendingTimer(): boolean {
    return this.timerArmed;
  }

  /** A new connection: forget the timer; the node knows what this device acked before. */
  resetConnection(): void {
    this.unacked = 0;
    this.timerArmed = false;
  }
}
