/**
 * Delivered receipts as watermarks, worked out on the node that holds the reader's devices:
 * when a device acks a message from someone else that this node pushed or synced to it, the
 * reader's delivered watermark in that chat moves to it. Coalesced per (chat, reader): changes
 * are pushed live to the senders every `liveFlushMs` (one `receipts` frame each, however many
 * messages it covers), each (chat, reader) at most once per `minIntervalMs` (a busy chat
 * would otherwise cost a frame per flush), and written every few seconds (`takeForPersist`,
 * by the cursor writer).
 * No database read on the way: the acked messages are the node's own pushes.
 */
import { compareMessageIds } from '@chat/protocol';
import type { DeliveredMark, ReceiptNotice } from '@chat/store';
import type { DeliveredMessage } from './pending-pushes';
import type { Slice } from './slices';
import { inSlice } from './slices';

interface Watermark {
  readonly chatId: string;
  readonly reader: string;
  upto: string;
  /** Senders to push the next live notice to. */
  liveNotify: Set<string>;
  /** Senders to record it for at the next write (null: nothing to write). */
  persistNotify: Set<string> | null;
  /** When it was last pushed live. */
  pushedAt: number;
}

export interface DeliveredReceiptsOptions {
  /** A (chat, reader) watermark is pushed live at most this often (default 0: every flush). */
  readonly minIntervalMs?: number;
}

/**
 * @example
 * const receipts = new DeliveredReceipts((notices) => fabric.notify(notices));
 * receipts.delivered('bob', session.onAck(seq).delivered);
 * setInterval(() => receipts.flushLive(), 250);
 * await store.recordDelivered(receipts.takeForPersist(), now);
 */
export class DeliveredReceipts {
  private readonly marks = new Map<string, Watermark>();
  private readonly live = new Set<Watermark>();

  constructor(
    private readonly push: (notices: readonly ReceiptNotice[]) => void,
    private readonly options: DeliveredReceiptsOptions = {},
  ) {}

  /** `reader` has these messages on a device now. */
  delivered(reader: string, messages: readonly DeliveredMessage[]): void {
    for (const m of messages) {
      if (m.from === reader) continue;
      const key = `${m.chatId}\u0000${reader}`;
      let mark = this.marks.get(key);
      if (mark === undefined) {
        mark = {
          chatId: m.chatId,
          reader,
          upto: m.messageId,
          liveNotify: new Set(),
          persistNotify: new Set(),
          pushedAt: Number.NEGATIVE_INFINITY,
        };
        this.marks.set(key, mark);
      } else if (compareMessageIds(m.messageId, mark.upto) > 0) {
        mark.upto = m.messageId;
      } else if (mark.liveNotify.has(m.from)) {
        continue;
      }
      mark.liveNotify.add(m.from);
      (mark.persistNotify ??= new Set()).add(m.from);
      this.live.add(mark);
    }
  }

  /**
   * Pushes the watermarks that moved since the last call to the senders they concern; one
   * pushed less than `minIntervalMs` ago waits for a later call.
   */
  flushLive(now = Date.now()): void {
    if (this.live.size === 0) return;
    const notices: ReceiptNotice[] = [];
    const minIntervalMs = this.options.minIntervalMs ?? 0;
    for (const mark of this.live) {
      if (now - mark.pushedAt < minIntervalMs) continue;
      mark.pushedAt = now;
      this.live.delete(mark);
      notices.push({
        chatId: mark.chatId,
        reader: mark.reader,
        delivered: mark.upto,
        read: null,
        notify: [...mark.liveNotify],
      });
      mark.liveNotify = new Set();
    }
    if (notices.length > 0) this.push(notices);
  }

  /** The watermarks to write since the last call; what was written is forgotten. */
  takeForPersist(slice?: Slice): DeliveredMark[] {
    const out: DeliveredMark[] = [];
    for (const [key, mark] of this.marks) {
      // By chat: the statements that write them lock chats.
      if (!inSlice(mark.chatId, slice)) continue;
      if (mark.persistNotify !== null) {
        out.push({
          chatId: mark.chatId,
          reader: mark.reader,
          upto: mark.upto,
          notify: [...mark.persistNotify],
        });
        mark.persistNotify = null;
      }
      if (!this.live.has(mark)) this.marks.delete(key);
    }
    return out;
  }

  /** Gives back marks whose write failed, for the next write. */
  restore(marks: readonly DeliveredMark[]): void {
    for (const m of marks) {
      const key = `${m.chatId}\u0000${m.reader}`;
      const mark = this.marks.get(key);
      if (mark === undefined) {
        this.marks.set(key, {
          chatId: m.chatId,
          reader: m.reader,
          upto: m.upto,
          liveNotify: new Set(),
          persistNotify: new Set(m.notify),
          pushedAt: Number.NEGATIVE_INFINITY,
        });
      } else {
        if (compareMessageIds(m.upto, mark.upto) > 0) mark.upto = m.upto;
        mark.persistNotify ??= new Set();
        for (const user of m.notify) mark.persistNotify.add(user);
      }
    }
  }
}
