import { BatchQueue, Linger } from '../src/batch-queue';

/** A run function whose batches finish only when the test says so. */
function controlled() {
  const batches: number[][] = [];
  const finish: (() => void)[] = [];
  const run = (batch: number[]): Promise<void> => {
    batches.push(batch);
    return new Promise<void>((resolve) => finish.push(resolve));
  };
  return { batches, finish, run };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('items pushed in one tick form one batch; later ones wait for a free slot and group', async () => {
  const c = controlled();
  const queue = new BatchQueue(c.run, { maxBatchSize: 3, maxConcurrent: 2 });
  for (const n of [1, 2, 3, 4, 5]) queue.push(n);
  await tick();
  // Two batches at most at once, each at most 3 items.
  expect(c.batches).toEqual([
    [1, 2, 3],
    [4, 5],
  ]);
  for (const n of [6, 7, 8, 9]) queue.push(n);
  await tick();
  expect(c.batches).toHaveLength(2);
  c.finish.shift()!();
  await tick();
  expect(c.batches[2]).toEqual([6, 7, 8]);
  let idle = false;
  void queue.idle().then(() => (idle = true));
  c.finish.shift()!();
  await tick();
  expect(c.batches[3]).toEqual([9]);
  expect(idle).toBe(false);
  while (c.finish.length > 0) c.finish.shift()!();
  await tick();
  expect(idle).toBe(true);
});

test('an idle queue is idle at once, and bad limits are refused', async () => {
  const queue = new BatchQueue(async () => undefined, { maxBatchSize: 1, maxConcurrent: 1 });
  await expect(queue.idle()).resolves.toBeUndefined();
  expect(
    () => new BatchQueue(async () => undefined, { maxBatchSize: 0, maxConcurrent: 1 }),
  ).toThrow(RangeError);
});

describe('Linger', () => {
  it('waits only once batches form on their own, and never past a full batch', () => {
    const linger = new Linger(3, 8, 3);
    expect(linger.shouldWait(1)).toBe(false); // low load: nothing waits
    linger.sent(2);
    expect(linger.shouldWait(1)).toBe(false);
    linger.sent(3); // traffic is dense now
    expect(linger.shouldWait(1)).toBe(true);
    expect(linger.shouldWait(7)).toBe(true);
    expect(linger.shouldWait(8)).toBe(false);
    linger.sent(1); // back to quiet
    expect(linger.shouldWait(1)).toBe(false);
    expect(new Linger(0, 8).shouldWait(1)).toBe(false);
  });
});

test('under load a batch lingers to fill, and goes at once when full', async () => {
  jest.useFakeTimers();
  try {
    const c = controlled();
    const queue = new BatchQueue(c.run, {
      maxBatchSize: 10,
      maxConcurrent: 1,
      lingerMs: 5,
      lingerFullAt: 4,
    });
    for (const n of [1, 2, 3]) queue.push(n);
    await jest.advanceTimersByTimeAsync(0);
    expect(c.batches).toEqual([[1, 2, 3]]); // not dense yet: goes at once
    queue.push(4);
    c.finish.shift()!();
    await jest.advanceTimersByTimeAsync(0);
    expect(c.batches).toHaveLength(1); // dense: [4] lingers
    await jest.advanceTimersByTimeAsync(5);
    expect(c.batches[1]).toEqual([4]);
    for (const n of [5, 6, 7]) queue.push(n);
    c.finish.shift()!();
    await jest.advanceTimersByTimeAsync(0);
    expect(c.batches[2]).toEqual([5, 6, 7]); // [4] went alone: quiet again, no wait
    queue.push(8);
    c.finish.shift()!();
    await jest.advanceTimersByTimeAsync(1);
    expect(c.batches).toHaveLength(3); // dense again: 8 waits for company...
    for (const n of [9, 10, 11]) queue.push(n);
    await jest.advanceTimersByTimeAsync(0);
    expect(c.batches[3]).toEqual([8, 9, 10, 11]); // ...and goes as soon as the batch is full
  } finally {
    jest.useRealTimers();
  }
});
