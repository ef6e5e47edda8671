import { StoreEpochChangedError } from '@chat/store';
import { waitFor } from '@chat/testkit';
import pino from 'pino';
import { StoreEpochWatch } from '../src/store-epoch';
import type { StoreEpochChange } from '../src/store-epoch';

const log = pino({ level: 'silent' });

function watchOver(epochs: { now: string }, intervalMs = 60_000) {
  const changes: StoreEpochChange[] = [];
  const watch = new StoreEpochWatch({
    read: async () => epochs.now,
    intervalMs,
    log,
  });
  watch.onChange((c) => changes.push(c));
  return { watch, changes };
}

/** A raw connection whose database has epoch `epoch`. */
const connectionTo = (epoch: string) => async () => [{ epoch }];

test('a new connection to a database of another epoch is refused after the change was handled', async () => {
  const db = { now: 'aaaa' };
  const { watch, changes } = watchOver(db);
  // Before start (migrations) nothing is checked, not even readable.
  await watch.checkConnection(async () => {
    throw new Error('no chat_store_epoch() yet');
  });
  expect(await watch.start()).toBe('aaaa');
  await watch.checkConnection(connectionTo('aaaa'));
  expect(changes).toEqual([]);

  const order: string[] = [];
  watch.onChange(() => order.push('handled'));
  await watch
    .checkConnection(connectionTo('bbbb'))
    .catch((err: unknown) =>
      order.push(err instanceof StoreEpochChangedError ? 'refused' : 'other'),
    );
  expect(order).toEqual(['handled', 'refused']);
  expect(changes).toEqual([{ previous: 'aaaa', current: 'bbbb' }]);
  expect(watch.current).toBe('bbbb');
  // The next connections find the epoch the node runs under now.
  await watch.checkConnection(connectionTo('bbbb'));
  expect(changes).toHaveLength(1);
  watch.stop();
});

test('the periodic check notices a change that left the connections alone', async () => {
  const db = { now: 'aaaa' };
  const { watch, changes } = watchOver(db, 20);
  await watch.start();
  db.now = 'cccc'; // `npm run store -- new-epoch`
  await waitFor(() => expect(changes).toEqual([{ previous: 'aaaa', current: 'cccc' }]));
  watch.stop();
});

test('an unreadable epoch is no change', async () => {
  let readable = true;
  const watch = new StoreEpochWatch({
    read: async () => {
      if (!readable) throw new Error('database unavailable');
      return 'aaaa';
    },
    intervalMs: 60_000,
    log,
  });
  const changes: StoreEpochChange[] = [];
  watch.onChange((c) => changes.push(c));
  await watch.start();
  readable = false;
  await watch.check();
  await expect(watch.checkConnection(async () => [])).rejects.toThrow(/no epoch/);
  expect(watch.current).toBe('aaaa');
  expect(changes).toEqual([]);
  watch.stop();
});
