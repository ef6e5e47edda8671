import type { EventFrame } from '@chat/protocol';
import { AckCoalescer } from '../src/ack-coalescer';
import { SeqTracker } from '../src/seq-tracker';

function evt(seq: number): EventFrame {
  return {
    t: 'evt',
    seq,
    kind: 'message',
    chatId: 'c1',
    messageId: `m${seq}`,
    from: 'alice',
    body: `hello ${seq}`,
    attachments: [],
    ts: 1000 + seq,
  };
}

const seqsOf = (events: EventFrame[]): number[] => events.map((e) => e.seq);

describe('SeqTracker', () => {
  it('delivers in order and drops duplicates and already-seen events', () => {
    const t = new SeqTracker(2);
    expect(seqsOf(t.offer(evt(1)))).toEqual([]);
    expect(seqsOf(t.offer(evt(2)))).toEqual([]);
    expect(seqsOf(t.offer(evt(3)))).toEqual([3]);
    expect(seqsOf(t.offer(evt(3)))).toEqual([]);
    expect(seqsOf(t.offer(evt(4)))).toEqual([4]);
    expect(t.lastContiguous).toBe(4);
    expect(t.hasGap).toBe(false);
  });

  it('holds events after a gap and releases them in order once it is filled', () => {
    const t = new SeqTracker(0);
    expect(seqsOf(t.offer(evt(1)))).toEqual([1]);
    expect(seqsOf(t.offer(evt(4)))).toEqual([]);
    expect(seqsOf(t.offer(evt(3)))).toEqual([]);
    expect(seqsOf(t.offer(evt(4)))).toEqual([]); // held duplicate
    expect(t.hasGap).toBe(true);
    expect(t.heldCount).toBe(2);
    expect(seqsOf(t.offer(evt(2)))).toEqual([2, 3, 4]);
    expect(t.hasGap).toBe(false);
    expect(t.heldCount).toBe(0);
  });

  it('turns a ping beyond lastContiguous into a gap, and a sync page into a request after it', () => {
    const t = new SeqTracker(5);
    expect(t.observe(5)).toBe(false);
    expect(t.observe(3)).toBe(false);
    expect(t.observe(8)).toBe(true);
    const page = t.beginPage();
    expect(page).toEqual({ after: 5, knownAtSend: 8 });
    expect(seqsOf([6, 7, 8].flatMap((s) => t.offer(evt(s))))).toEqual([6, 7, 8]);
    expect(t.endPage(page, { seq: 8, more: false })).toEqual([]);
    expect(t.hasGap).toBe(false);
  });

  it('skips numbers a complete sync proved gone (retention) without losing held events', () => {
    const t = new SeqTracker(0);
    t.offer(evt(10)); // pushed; 1..9 unknown
    const page = t.beginPage();
    // The inbox only still holds 7..10: the sync returns 7, 8, 9 (10 we already hold).
    expect(seqsOf([7, 8, 9].flatMap((s) => t.offer(evt(s))))).toEqual([]);
    expect(seqsOf(t.endPage(page, { seq: 10, more: false }))).toEqual([7, 8, 9, 10]);
    expect(t.lastContiguous).toBe(10);
  });

  it('does not skip below an event that arrived after the sync was sent', () => {
    const t = new SeqTracker(0);
    t.observe(2);
    const page = t.beginPage();
    t.offer(evt(1));
    t.offer(evt(2));
    t.offer(evt(5)); // pushed while the sync was in flight: 3 and 4 may still be committing
    expect(seqsOf(t.endPage(page, { seq: 2, more: false }))).toEqual([]);
    expect(t.lastContiguous).toBe(2);
    expect(t.hasGap).toBe(true); // another page is needed
    const next = t.beginPage();
    expect(next.after).toBe(2);
    expect(next.knownAtSend).toBe(5);
    expect(seqsOf(t.offer(evt(3)))).toEqual([3]);
    // This page was sent after 5 was known: 4 not coming back means it no longer exists.
    expect(seqsOf(t.endPage(next, { seq: 5, more: false }))).toEqual([5]);
    expect(t.lastContiguous).toBe(5);
    expect(seqsOf(t.offer(evt(4)))).toEqual([]);
  });

  it('skips a hole at the start of a page with more=true, so paging cannot loop', () => {
    const t = new SeqTracker(0);
    const page = t.beginPage();
    [4, 5, 6].forEach((s) => t.offer(evt(s))); // 1..3 were deleted
    expect(seqsOf(t.endPage(page, { seq: 20, more: true }))).toEqual([4, 5, 6]);
    expect(t.lastContiguous).toBe(6);
    expect(t.beginPage().after).toBe(6);
  });

  it('keeps waiting when a more=true page made progress', () => {
    const t = new SeqTracker(0);
    const page = t.beginPage();
    [1, 2].forEach((s) => t.offer(evt(s)));
    t.offer(evt(9)); // a live push, 3..8 come with the next page
    expect(t.endPage(page, { seq: 9, more: true })).toEqual([]);
    expect(t.lastContiguous).toBe(2);
  });

  it('rejects a bad starting seq', () => {
    expect(() => new SeqTracker(-1)).toThrow(RangeError);
    expect(() => new SeqTracker(1.5)).toThrow(RangeError);
  });
});

describe('AckCoalescer', () => {
  const policy = { maxDelayMs: 20, maxEvents: 3 };

  it('arms one timer for a burst and acks the latest seq when it fires', () => {
    const a = new AckCoalescer(policy, 0);
    expect(a.delivered(1)).toBe('arm-timer');
    expect(a.delivered(1)).toBe('wait');
    expect(a.pendingTimer).toBe(true);
    a.timerFired();
    expect(a.take(2)).toBe(2);
    expect(a.take(2)).toBeUndefined(); // nothing new
  });

  it('acks at once after maxEvents events', () => {
    const a = new AckCoalescer(policy, 0);
    expect(a.delivered(1)).toBe('arm-timer');
    expect(a.delivered(2)).toBe('now');
    expect(a.take(3)).toBe(3);
    expect(a.delivered(5)).toBe('now');
  });

  it('forces an ack after a sync page even when nothing is new', () => {
    const a = new AckCoalescer(policy, 7);
    expect(a.take(7)).toBeUndefined();
    expect(a.take(7, true)).toBe(7);
    expect(a.lastAcked).toBe(7);
  });

  it('ignores empty deliveries and forgets its timer on a new connection', () => {
    const a = new AckCoalescer(policy, 0);
    expect(a.delivered(0)).toBe('wait');
    expect(a.delivered(1)).toBe('arm-timer');
    a.resetConnection();
    expect(a.pendingTimer).toBe(false);
    expect(a.delivered(1)).toBe('arm-timer');
  });
});
