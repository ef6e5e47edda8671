/**
 * The events pushed to one device and not yet acked, in seq order. Acks are cumulative. Pure:
 * the session decides what to do with `due()` (push again, or give up and close).
 */
import type { WireData } from '@chat/protocol';

/** A message from someone else: once acked, it counts as delivered to the device's user. */
export interface DeliveredMessage {
  readonly chatId: string;
  readonly messageId: string;
  readonly from: string;
}

export interface PendingPush {
  readonly seq: number;
  readonly data: WireData;
  readonly message: DeliveredMessage | undefined;
  sentAt: number;
  tries: number;
}

export class PendingPushes {
  private readonly items: PendingPush[] = [];

  get size(): number {
    return this.items.length;
  }

  add(seq: number, data: WireData, now: number, message?: DeliveredMessage): void {
    // Pushes nearly always come in seq order; walk back from the end for the rare exception.
    let i = this.items.length;
    while (i > 0 && this.items[i - 1]!.seq > seq) i--;
    if (i > 0 && this.items[i - 1]!.seq === seq) return;
    this.items.splice(i, 0, { seq, data, message, sentAt: now, tries: 1 });
  }

  /** Forgets every push with seq <= `seq`; returns the messages among them. */
  ackUpTo(seq: number): DeliveredMessage[] {
    let n = 0;
    const messages: DeliveredMessage[] = [];
    while (n < this.items.length && this.items[n]!.seq <= seq) {
      const message = this.items[n]!.message;
      if (message !== undefined) messages.push(message);
      n++;
    }
    if (n > 0) this.items.splice(0, n);
    return messages;
  }

  /** True when the oldest unacked push has waited longer than `timeoutMs`. */
  isOverdue(now: number, timeoutMs: number): boolean {
    const oldest = this.items[0];
    return oldest !== undefined && now - oldest.sentAt >= timeoutMs;
  }

  /** Highest number of pushes any pending event has had. */
  maxTries(): number {
    let max = 0;
    for (const item of this.items) max = Math.max(max, item.tries);
    return max;
  }

  /** Marks every pending push as sent again now and returns them for re-sending. */
  retryAll(now: number): readonly PendingPush[] {
    for (const item of this.items) {
      item.sentAt = now;
      item.tries += 1;
    }
    return this.items;
  }

  clear(): void {
    this.items.length = 0;
  }
}
