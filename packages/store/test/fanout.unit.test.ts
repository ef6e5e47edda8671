import { Fanout } from '../src/fanout';
import type { Delivery } from '../src/index';
import type { FanoutEvent } from '../src/user-step';

const silent = { warn: () => undefined, error: () => undefined };

function event(userId: string, messageId: string): FanoutEvent {
  return {
    userId,
    messageId,
    origin: 'n1',
    event: {
      seq: 0,
      kind: 'message',
      chatId: 'c',
      messageId,
      from: 'x',
      body: 'b',
      attachments: [],
      ts: 1,
    },
  };
}

/** An append whose statements finish (or fail) when the test says so. */
function controlledAppend() {
  const calls: { events: readonly FanoutEvent[]; done: (ok: boolean) => void }[] = [];
  const append = (events: readonly FanoutEvent[]): Promise<Delivery[]> =>
    new Promise((resolve, reject) =>
      calls.push({
        events,
        done: (ok) =>
          ok
            ? resolve(
                events.map((e, i) => ({ userId: e.userId, event: { ...e.event, seq: i + 1 } })),
              )
            : reject(new Error('postgres away')),
      }),
    );
  return { calls, append };
}

const flush = (): Promise<void> => jest.advanceTimersByTimeAsync(0);

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

test('the mark stays at the oldest message owed until its last event is committed', async () => {
  let now = 1000;
  const { calls, append } = controlledAppend();
  const delivered: Delivery[] = [];
  const fanout = new Fanout({
    append,
    onDeliveries: (d) => delivered.push(...d),
    now: () => now,
    logger: silent,
  });
  expect(fanout.upto()).toBe(1000);
  const a = fanout.register(900);
  const b = fanout.register(950);
  now = 2000;
  expect(fanout.upto()).toBe(900); // before its chat step even answered
  fanout.release(b); // b turned out a dup: nothing owed for it
  fanout.enqueue(a, [event('bob', 'm1'), event('carol', 'm1')]);
  await flush();
  expect(calls).toHaveLength(1);
  expect(fanout.upto()).toBe(900);
  calls[0]!.done(true);
  await flush();
  expect(fanout.upto()).toBe(2000);
  expect(delivered.map((d) => d.userId)).toEqual(['bob', 'carol']);
  await expect(fanout.idle()).resolves.toBeUndefined();
});

test('a failed statement is retried in order, with growing pauses, and nothing is dropped', async () => {
  const { calls, append } = controlledAppend();
  const fanout = new Fanout({
    append,
    onDeliveries: () => undefined,
    now: () => 0,
    logger: silent,
    retryMs: 50,
  });
  const t = fanout.register(0);
  fanout.enqueue(t, [event('bob', 'm1')]);
  await flush();
  calls[0]!.done(false);
  await flush();
  fanout.enqueue(fanout.register(0), [event('bob', 'm2')]);
  await jest.advanceTimersByTimeAsync(49);
  expect(calls).toHaveLength(1); // waiting for the retry
  await jest.advanceTimersByTimeAsync(1);
  expect(calls[1]!.events.map((e) => e.messageId)).toEqual(['m1', 'm2']);
  calls[1]!.done(false);
  await jest.advanceTimersByTimeAsync(99);
  expect(calls).toHaveLength(2); // the pause doubled
  await jest.advanceTimersByTimeAsync(1);
  calls[2]!.done(true);
  await flush();
  expect(fanout.backlog).toBe(0);
});

test('a user with events in a running statement waits: each user’s events stay in order', async () => {
  const { calls, append } = controlledAppend();
  const fanout = new Fanout({
    append,
    onDeliveries: () => undefined,
    now: () => 0,
    logger: silent,
    maxConcurrent: 2,
  });
  fanout.enqueue(fanout.register(0), [event('bob', 'm1')]);
  await flush();
  fanout.enqueue(fanout.register(0), [event('bob', 'm2'), event('carol', 'm2')]);
  await flush();
  // carol can go beside the running statement; bob's m2 must wait for m1.
  expect(calls.map((c) => c.events.map((e) => `${e.userId}:${e.messageId}`))).toEqual([
    ['bob:m1'],
    ['carol:m2'],
  ]);
  calls[0]!.done(true);
  await flush();
  expect(calls[2]!.events.map((e) => `${e.userId}:${e.messageId}`)).toEqual(['bob:m2']);
});

test('settled() resolves when the message’s events are all in', async () => {
  const { calls, append } = controlledAppend();
  const fanout = new Fanout({
    append,
    onDeliveries: () => undefined,
    now: () => 0,
    logger: silent,
  });
  const t = fanout.register(0);
  let settled = false;
  void fanout.settled(t).then(() => (settled = true));
  fanout.enqueue(t, [event('bob', 'm1')]);
  await flush();
  expect(settled).toBe(false);
  calls[0]!.done(true);
  await flush();
  expect(settled).toBe(true);
});

test('backlog counts the events not committed yet; a long queue goes out in order, batch by batch', async () => {
  const { calls, append } = controlledAppend();
  const fanout = new Fanout({
    append,
    onDeliveries: () => undefined,
    now: () => 1,
    logger: silent,
    maxBatchSize: 3,
    maxConcurrent: 2,
  });
  const first = fanout.register(1);
  fanout.enqueue(first, [event('bob', 'm1')]);
  await flush(); // bob's first event is being appended
  const second = fanout.register(1);
  fanout.enqueue(
    second,
    ['bob', 'carol', 'dan', 'eve', 'fay'].map((u) => event(u, 'm2')),
  );
  expect(fanout.backlog).toBe(6);
  await flush();
  // bob's second event waits behind his running one; the others go, three at a time.
  const taken = (): string[][] =>
    calls.map((c) => c.events.map((e) => `${e.userId}/${e.messageId}`));
  expect(taken()).toEqual([['bob/m1'], ['carol/m2', 'dan/m2', 'eve/m2']]);
  calls[0]!.done(true);
  await flush();
  expect(fanout.backlog).toBe(5);
  expect(taken()[2]).toEqual(['bob/m2', 'fay/m2']);
  calls[1]!.done(true);
  calls[2]!.done(true);
  await flush();
  expect(fanout.backlog).toBe(0);
  await expect(fanout.idle()).resolves.toBeUndefined();
});
