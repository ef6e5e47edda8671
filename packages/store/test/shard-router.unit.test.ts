import { WHOLE_BATCH, perShard } from '../src/shard-router';
import type { KeyRouter, RoutedGroup } from '../src/shard-router';

/** Groups by the first letter of the key, like shards would; counts `strayed` calls. */
function letterRouter(): KeyRouter & { strays: number } {
  const router = {
    strays: 0,
    group<T>(items: readonly T[], keyOf: (item: T) => string): Promise<RoutedGroup<T>[]> {
      const groups = new Map<string, RoutedGroup<T>>();
      for (const item of items) {
        const key = keyOf(item);
        const group = groups.get(key[0]!) ?? { route: key, items: [] };
        group.items.push(item);
        groups.set(key[0]!, group);
      }
      return Promise.resolve([...groups.values()]);
    },
    strayed(): void {
      router.strays++;
    },
  };
  return router;
}

test('one call per shard group with its distinct keys and a route; results of every group', async () => {
  const router = letterRouter();
  const calls: { items: string[]; keys: string[] | null; route: string | null }[] = [];
  const out = await perShard(
    router,
    ['a1', 'b1', 'a2', 'a1'],
    (k) => k,
    (items, keys, route) => {
      calls.push({ items, keys, route });
      return Promise.resolve(items.map((i) => i.toUpperCase()));
    },
  );
  expect(calls).toEqual([
    { items: ['a1', 'a2', 'a1'], keys: ['a1', 'a2'], route: 'a1' },
    { items: ['b1'], keys: ['b1'], route: 'b1' },
  ]);
  expect(out).toEqual(['A1', 'A2', 'A1', 'B1']);
});

test('plain PostgreSQL: one call, no keys, no route', async () => {
  const calls: (string[] | null)[] = [];
  await perShard(
    WHOLE_BATCH,
    ['a1', 'b1'],
    (k) => k,
    (items, keys) => {
      calls.push(keys);
      return Promise.resolve(items);
    },
  );
  expect(calls).toEqual([null]);
});

test('a statement that reached a second shard makes the router ask for the shards again', async () => {
  const router = letterRouter();
  const multiShard = new Error('multi-task query about to be executed');
  await expect(
    perShard(
      router,
      ['a1'],
      (k) => k,
      () => Promise.reject(multiShard),
    ),
  ).rejects.toBe(multiShard);
  expect(router.strays).toBe(1);
  await expect(
    perShard(
      router,
      ['a1'],
      (k) => k,
      () => Promise.reject(new Error('deadlock detected')),
    ),
  ).rejects.toThrow('deadlock');
  expect(router.strays).toBe(1);
});
