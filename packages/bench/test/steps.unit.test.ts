import type { LadderEntry, LadderOptions } from '../src';
import { defaultCriteria, highestPassed, judgeStep, nextRate, roundRate } from '../src';

const ladder: LadderOptions = { startRate: 250, maxRate: 64_000, maxSteps: 10 };

/** Runs the search against a server that sustains up to `capacity` msgs/s. */
function search(capacity: number, options: LadderOptions = ladder): LadderEntry[] {
  const history: LadderEntry[] = [];
  for (let rate = nextRate(history, options); rate !== null; rate = nextRate(history, options)) {
    history.push({ rate, passed: rate <= capacity });
  }
  return history;
}

describe('judgeStep', () => {
  const ok = { offeredRate: 1000, achievedRate: 995, deliverP99Ms: 40, failures: 0 };

  it('passes a step within the latency and throughput bounds', () => {
    expect(judgeStep(ok, defaultCriteria)).toEqual({ passed: true, reasons: [] });
  });

  it('fails on p99 deliver above the bound, low achieved rate, or lost messages', () => {
    expect(judgeStep({ ...ok, deliverP99Ms: 200.5 }, defaultCriteria).reasons).toEqual([
      'p99 deliver 200.5 ms > 200 ms',
    ]);
    expect(judgeStep({ ...ok, deliverP99Ms: 200 }, defaultCriteria).passed).toBe(true);
    expect(judgeStep({ ...ok, achievedRate: 899 }, defaultCriteria).passed).toBe(false);
    expect(judgeStep({ ...ok, achievedRate: 900 }, defaultCriteria).passed).toBe(true);
    expect(judgeStep({ ...ok, failures: 1 }, defaultCriteria).passed).toBe(false);
    expect(
      judgeStep({ ...ok, deliverP99Ms: 900, achievedRate: 10, failures: 3 }, defaultCriteria)
        .reasons,
    ).toHaveLength(3);
  });
});

describe('nextRate', () => {
  it('doubles from the start rate until a step fails, then refines once', () => {
    expect(search(3000).map((h) => h.rate)).toEqual([250, 500, 1000, 2000, 4000, 2800]);
    expect(highestPassed(search(3000))).toBe(2800);
    expect(highestPassed(search(2500))).toBe(2000); // the refinement at 2800 failed
  });

  it('stops at once when the first step fails', () => {
    expect(search(100)).toEqual([{ rate: 250, passed: false }]);
    expect(highestPassed(search(100))).toBeNull();
  });

  it('can skip the refinement', () => {
    expect(search(3000, { ...ladder, refine: false }).map((h) => h.rate)).toEqual([
      250, 500, 1000, 2000, 4000,
    ]);
  });

  it('is bounded by the maximum rate and the step count', () => {
    expect(search(1e9, { ...ladder, maxRate: 1000 }).map((h) => h.rate)).toEqual([250, 500, 1000]);
    expect(search(1e9, { ...ladder, maxSteps: 3 })).toHaveLength(3);
    expect(search(1e9, { ...ladder, maxRate: 100 }).map((h) => h.rate)).toEqual([100]);
  });

  it('honours another factor', () => {
    expect(search(1000, { ...ladder, factor: 4 }).map((h) => h.rate)).toEqual([
      250, 1000, 4000, 2000,
    ]);
  });
});

describe('roundRate', () => {
  it('keeps two significant digits', () => {
    expect(roundRate(1414.2)).toBe(1400);
    expect(roundRate(353.6)).toBe(350);
    expect(roundRate(88)).toBe(88);
    expect(roundRate(5657)).toBe(5700);
    expect(roundRate(0)).toBe(0);
  });
});
