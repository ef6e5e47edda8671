/**
 * The events lately handed to the app, by what they are rather than by seq. Seqs tell repeats
 * apart only within one store epoch: after the database was restored (a new `storeEpoch` in
 * `welcome`) the client syncs from the start, seqs it has seen come back for other events, and
 * events it has already delivered come back under their old seqs. This drops the second kind
 * and lets the first through.
 *
 * Bounded: the most recent `capacity` events are remembered (first in, first out). An event
 * older than that which comes back after a restore reaches the app again; apps key messages
 * by `(chatId, messageId)`, so it replaces itself.
 */
import type { EventFrame } from '@chat/protocol';

/** Remembered events by default: far more than a device has unacked when a restore happens. */
export const DEFAULT_DELIVERED_CAPACITY = 10_000;

/**
 * @example
 * const delivered = new DeliveredEvents();
 * for (const evt of seqs.offer(frame)) if (delivered.firstTime(evt)) app.handle(evt);
 */
export class DeliveredEvents {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity = DEFAULT_DELIVERED_CAPACITY) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError('capacity must be a positive integer');
    }
  }

  get size(): number {
    return this.keys.size;
  }

  /** True, and remembered, when no event like `evt` was delivered before. */
  firstTime(evt: EventFrame): boolean {
    const key = eventKey(evt);
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) {
      // A Set iterates in insertion order: the first key is the oldest.
      for (const oldest of this.keys) {
        this.keys.delete(oldest);
        break;
      }
    }
    return true;
  }
}

/**
 * What an event is, whatever its seq: a message by `(chatId, messageId)` (message ids of a
 * chat grow with time, so one stored after a restore never takes a lost one's id); a receipt
 * event by its message, reader and status; a chat change, which has no id, by all it says.
 */
export function eventKey(evt: EventFrame): string {
  switch (evt.kind) {
    case 'message':
      return `m\u0000${evt.chatId}\u0000${evt.messageId}`;
    case 'receipt':
      return `r\u0000${evt.chatId}\u0000${evt.messageId}\u0000${evt.user}\u0000${evt.status}`;
    case 'chat':
      return [
        'c',
        evt.chatId,
        evt.change,
        evt.by,
        evt.ts,
        evt.members.join(','),
        evt.admin === true ? 'admin' : '',
      ].join('\u0000');
  }
  // A kind this client does not know yet: only its seq tells it apart.
  return `s\u0000${(evt as { seq: number }).seq}`;
}
