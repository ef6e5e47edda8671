import type { DrainProgress } from '@chat/cluster';
import { peakPerSecond } from '@chat/cluster';
import { DrainController, MoveBudget } from '../src/cluster/drain-controller';

describe('MoveBudget', () => {
  it('allows the rate, catches up after a late timer, and never more than rate + 20 % per second', () => {
    const budget = new MoveBudget(50, 0);
    let moves = 0;
    // A timer that fires only every 150 ms (a busy event loop) still gets the full rate.
    for (let t = 0; t <= 10_000; t += 150) while (budget.take(t)) moves++;
    expect(moves).toBeGreaterThanOrEqual(495);
    expect(moves).toBeLessThanOrEqual(511);
    const times: number[] = [];
    const fresh = new MoveBudget(50, 0);
    for (let t = 0; t <= 5_000; t += 7) while (fresh.take(t)) times.push(t);
    expect(peakPerSecond(times)).toBeLessThanOrEqual(60);
  });
});

describe('peakPerSecond', () => {
  it('counts the most moves in any one-second window', () => {
    expect(peakPerSecond([])).toBe(0);
    expect(peakPerSecond([0, 100, 999, 1000, 1999])).toBe(3);
  });
});

describe('DrainController', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('moves exactly the users it no longer owns, at the rate, and publishes done', () => {
    const connected = new Set(Array.from({ length: 100 }, (_, i) => `u${i}`));
    const owned = (u: string): boolean => Number(u.slice(1)) % 2 === 0;
    const moved: Array<{ user: string; at: number }> = [];
    const published: DrainProgress[] = [];
    const drain = new DrainController({
      nodeId: 'node-1',
      clock: { now: () => Date.now() },
      connectedUsers: () => connected,
      ownsLocally: owned,
      move: (user) => {
        moved.push({ user, at: Date.now() });
        return connected.delete(user);
      },
      publish: (p) => published.push(p),
      random: () => 0.5,
    });
    const start = Date.now();
    drain.onTopology(7, 20, true);
    expect(published.at(-1)).toMatchObject({ epoch: 7, total: 50, moved: 0, done: false });
    jest.advanceTimersByTime(10_000);
    expect(moved.map((m) => m.user).sort()).toEqual(
      [...Array(50).keys()].map((i) => `u${2 * i + 1}`).sort(),
    );
    expect(peakPerSecond(moved.map((m) => m.at))).toBeLessThanOrEqual(24);
    // 50 users at 20/s take about 2.5 s.
    expect(moved.at(-1)!.at - start).toBeGreaterThanOrEqual(2_000);
    expect(moved.at(-1)!.at - start).toBeLessThan(3_500);
    expect(published.at(-1)).toMatchObject({
      epoch: 7,
      total: 50,
      moved: 50,
      remaining: 0,
      done: true,
    });
  });

  it('recomputes who moves when the ring changes mid-drain, and only republishes on an epoch bump', () => {
    const connected = new Set(['a', 'b', 'c', 'd']);
    let owners: Record<string, boolean> = { a: false, b: false, c: false, d: true };
    const published: DrainProgress[] = [];
    const drain = new DrainController({
      nodeId: 'n',
      clock: { now: () => Date.now() },
      connectedUsers: () => connected,
      ownsLocally: (u) => owners[u] ?? true,
      move: (u) => connected.delete(u),
      publish: (p) => published.push(p),
    });
    drain.onTopology(1, 1, true);
    expect(published.at(-1)?.total).toBe(3);
    owners = { a: true, b: true, c: true, d: false };
    drain.onTopology(2, 1, true);
    expect(published.at(-1)).toMatchObject({ epoch: 2, total: 1 });
    jest.advanceTimersByTime(5_000);
    expect([...connected].sort()).toEqual(['a', 'b', 'c']);
    expect(published.at(-1)).toMatchObject({ epoch: 2, done: true, moved: 1 });
    drain.onTopology(3, 1, false);
    expect(published.at(-1)).toMatchObject({ epoch: 3, done: true });
  });
});
