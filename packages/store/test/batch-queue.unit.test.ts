import { BatchQueue } from '../src/batch-queue';

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
