import { OpenLoopSchedule, partnerOf, senderOf } from '../src';

describe('OpenLoopSchedule', () => {
  it('spaces messages evenly from the start, whatever happens in between', () => {
    const s = new OpenLoopSchedule(1000, 100, 2000);
    expect(s.total).toBe(2000);
    expect(s.scheduledAt(0)).toBe(100);
    expect(s.scheduledAt(10)).toBe(110);
    expect(s.scheduledAt(1999)).toBe(2099);
  });

  it('counts due messages by clock time, so a late tick sends the backlog at once', () => {
    const s = new OpenLoopSchedule(500, 0, 1000); // one message every 2 ms
    expect(s.dueBy(-1)).toBe(0);
    expect(s.dueBy(0)).toBe(1);
    expect(s.dueBy(1.9)).toBe(1);
    expect(s.dueBy(2)).toBe(2);
    expect(s.dueBy(101)).toBe(51); // a tick 100 ms late: 50 more are due
    expect(s.dueBy(10_000)).toBe(500); // never past the total
  });

  it('finds the first message of the measurement window', () => {
    const s = new OpenLoopSchedule(1000, 0, 8000);
    expect(s.firstIndexAt(2000)).toBe(2000);
    expect(s.scheduledAt(s.firstIndexAt(2000))).toBeGreaterThanOrEqual(2000);
    expect(new OpenLoopSchedule(3, 0, 3000).firstIndexAt(1000)).toBe(3);
    expect(s.firstIndexAt(0)).toBe(0);
    expect(s.firstIndexAt(99_999)).toBe(8000);
  });

  it('rejects a rate or duration that is not positive', () => {
    expect(() => new OpenLoopSchedule(0, 0, 1000)).toThrow(RangeError);
    expect(() => new OpenLoopSchedule(10, 0, 0)).toThrow(RangeError);
  });
});

describe('senders and pairs', () => {
  it('spreads sends round-robin over the users', () => {
    const counts = new Array<number>(10).fill(0);
    for (let k = 0; k < 1000; k++) counts[senderOf(k, 10)]!++;
    expect(counts).toEqual(new Array<number>(10).fill(100));
  });

  it('pairs users 2i and 2i+1 both ways', () => {
    expect(partnerOf(0)).toBe(1);
    expect(partnerOf(1)).toBe(0);
    expect(partnerOf(998)).toBe(999);
    for (let u = 0; u < 100; u++) expect(partnerOf(partnerOf(u))).toBe(u);
  });
});
