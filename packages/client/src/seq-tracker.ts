/**
 * Per-user sequence bookkeeping of one device: dedupe, in-order delivery, gap detection and the
 * rules that decide when a sync has proven that a missing sequence number no longer exists.
 *
 * Why a missing number can be skipped: the node allocates a user's sequence numbers under a
 * row lock held until commit, so a user's events commit in sequence order. Once any event, ping
 * or welcome has told us that seq S exists, every existing event below S is already committed,
 * and a sync sent after that moment returns all of them. Whatever such a sync did not return
 * was deleted (retention) and will never arrive, so waiting for it would stall the device.
 */
import type { EventFrame } from '@chat/protocol';

/** What the tracker knew when a sync page was sent; hand it back to `endPage`. */
export interface SyncPage {
  /** The `after` of the sync request. */
  readonly after: number;
  /** Highest seq known to exist when the request was sent. */
  readonly knownAtSend: number;
}

/**
 * @example
 * const seqs = new SeqTracker(savedLastSeq);
 * for (const evt of seqs.offer(frame)) app.handle(evt); // strictly in seq order, no duplicates
 * if (seqs.hasGap) startSync(seqs.beginPage());
 */
export class SeqTracker {
  private contiguous: number;
  private latest: number;
  private readonly held = new Map<number, EventFrame>();

  constructor(lastSeq = 0) {
    if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) {
      throw new RangeError('lastSeq must be a non-negative integer');
    }
    this.contiguous = lastSeq;
    this.latest = lastSeq;
  }

  /** Every event up to this seq has been handed out (or proven not to exist). */
  get lastContiguous(): number {
    return this.contiguous;
  }

  /** Highest seq known to exist (from events, pings, welcome and sync replies). */
  get latestKnown(): number {
    return this.latest;
  }

  /** Events received ahead of a gap, waiting for it to be filled. */
  get heldCount(): number {
    return this.held.size;
  }

  /** True when something is known to exist beyond `lastContiguous`: a sync is needed. */
  get hasGap(): boolean {
    return this.latest > this.contiguous;
  }

  /**
   * Takes one received event; returns the events that can now be delivered, in order. Duplicates
   * and events at or below `lastContiguous` return nothing.
   */
  offer(evt: EventFrame): EventFrame[] {
    const { seq } = evt;
    if (!Number.isSafeInteger(seq) || seq <= this.contiguous || this.held.has(seq)) return [];
    this.observe(seq);
    this.held.set(seq, evt);
    return this.drain();
  }

  /** Records that `seq` exists (a ping, the welcome or a sync reply); returns `hasGap`. */
  observe(seq: number): boolean {
    if (Number.isSafeInteger(seq) && seq > this.latest) this.latest = seq;
    return this.hasGap;
  }

  /** Call when sending a sync page; its `after` is the request's `after`. */
  beginPage(): SyncPage {
    return { after: this.contiguous, knownAtSend: this.latest };
  }

  /**
   * Applies a sync page's `ok {seq, more}`, after its events went through `offer`. Returns the
   * events that became deliverable because missing numbers were proven gone.
   */
  endPage(page: SyncPage, reply: { seq: number; more: boolean }): EventFrame[] {
    this.observe(reply.seq);
    if (!reply.more) return this.settleThrough(page.knownAtSend);
    // A page with more=true returned the lowest existing events after `after`. If none of
    // them was `after + 1`, the numbers below the lowest one we hold do not exist.
    const lowest = this.lowestHeld();
    if (this.contiguous === page.after && lowest !== undefined) {
      return this.settleThrough(lowest - 1);
    }
    return [];
  }

  /**
   * Declares every seq up to `bound` settled: held events up to it are released in order and
   * the numbers between them are skipped.
   */
  settleThrough(bound: number): EventFrame[] {
    if (bound <= this.contiguous) return [];
    const out: EventFrame[] = [];
    for (const seq of [...this.held.keys()].filter((s) => s <= bound).sort((a, b) => a - b)) {
      out.push(this.held.get(seq) as EventFrame);
      this.held.delete(seq);
    }
    this.contiguous = bound;
    this.observe(bound);
    return out.concat(this.drain());
  }

  private drain(): EventFrame[] {
    const out: EventFrame[] = [];
    for (;;) {
      const next = this.held.get(this.contiguous + 1);
      if (next === undefined) return out;
      this.held.delete(next.seq);
      this.contiguous = next.seq;
      out.push(next);
    }
  }

  private lowestHeld(): number | undefined {
    let lowest: number | undefined;
    for (const seq of this.held.keys()) if (lowest === undefined || seq < lowest) lowest = seq;
    return lowest;
  }
}
