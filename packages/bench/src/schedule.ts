/**
 * Open-loop send schedule: message k is due at `startMs + k * 1000 / rate`, whatever the server
 * answers. Latency is measured from the scheduled time, so a generator that falls behind (or a
 * server that makes it fall behind) shows as latency instead of silently sending less
 * (no coordinated omission).
 *
 * @example
 * const s = new OpenLoopSchedule(1000, performance.now(), 8000); // 1000 msg/s for 8 s
 * const due = s.dueBy(performance.now()); // send messages [sent, due)
 */
export class OpenLoopSchedule {
  /** Number of messages in the whole schedule. */
  readonly total: number;
  private readonly intervalMs: number;

  constructor(
    readonly ratePerSec: number,
    readonly startMs: number,
    readonly durationMs: number,
  ) {
    if (!(ratePerSec > 0) || !(durationMs > 0)) {
      throw new RangeError('rate and duration must be positive');
    }
    this.intervalMs = 1000 / ratePerSec;
    this.total = Math.floor((durationMs * ratePerSec) / 1000);
  }

  /** When message k is due. */
  scheduledAt(k: number): number {
    return this.startMs + k * this.intervalMs;
  }

  /** How many messages (from k = 0) are due at `nowMs`, capped at the schedule's total. */
  dueBy(nowMs: number): number {
    if (nowMs < this.startMs) return 0;
    const due = Math.floor((nowMs - this.startMs) / this.intervalMs) + 1;
    return Math.min(due, this.total);
  }

  /** The first message index scheduled at or after `offsetMs` from the start. */
  firstIndexAt(offsetMs: number): number {
    return Math.min(this.total, Math.max(0, Math.ceil(offsetMs / this.intervalMs - 1e-9)));
  }
}

/** Round-robin sender choice: message k goes from user k mod n, so each user sends rate / n. */
export function senderOf(k: number, users: number): number {
  return k % users;
}

/** 1:1 pairs: users 2i and 2i+1 share chat i. */
export function partnerOf(user: number): number {
  return user % 2 === 0 ? user + 1 : user - 1;
}
