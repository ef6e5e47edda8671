import type { DeviceCursor } from '@chat/store';
import pino from 'pino';
import { AckWriter } from '../src/ack-writer';

const log = pino({ level: 'silent' });

interface Write {
  readonly cursors: DeviceCursor[];
  readonly at: number;
}

function writerWith(
  writeCursors: (cursors: DeviceCursor[]) => Promise<void>,
  options: { flushMs?: number; pauseMs?: number; maxDevicesPerStatement?: number } = {},
): { acks: AckWriter; order: string[] } {
  const order: string[] = [];
  const acks = new AckWriter({
    store: {
      writeCursors: async (cursors) => {
        order.push(`cursors:${cursors.length}`);
        await writeCursors([...cursors]);
      },
    },
    flushMs: options.flushMs ?? 60_000,
    log,
    now: () => 1,
    beforeWrite: async (slice) => {
      order.push(slice === undefined ? 'before' : `before:${slice.index}/${slice.of}`);
    },
    ...(options.pauseMs !== undefined ? { pauseMs: options.pauseMs } : {}),
    ...(options.maxDevicesPerStatement !== undefined
      ? { maxDevicesPerStatement: options.maxDevicesPerStatement }
      : {}),
  });
  return { acks, order };
}

test('writes the highest seq of each device, in statements of bounded size, paced', async () => {
  const writes: Write[] = [];
  const { acks, order } = writerWith(
    async (cursors) => {
      writes.push({ cursors, at: performance.now() });
    },
    { maxDevicesPerStatement: 4, pauseMs: 20 },
  );
  for (let d = 0; d < 10; d++) acks.note('alice', `d${d}`, 5);
  acks.note('alice', 'd0', 9);
  acks.note('alice', 'd0', 7); // older: the cursor stays at 9
  await acks.flush();

  expect(order).toEqual(['before', 'cursors:4', 'cursors:4', 'cursors:2']);
  const written = writes.flatMap((w) => w.cursors);
  expect(written).toHaveLength(10);
  expect(written.find((c) => c.deviceId === 'd0')?.seq).toBe(9);
  // The statements of one flush leave room for the sends between them.
  for (let i = 1; i < writes.length; i++) {
    expect(writes[i]!.at - writes[i - 1]!.at).toBeGreaterThanOrEqual(15);
  }

  await acks.flush();
  expect(order).toHaveLength(5); // nothing dirty: only `before` ran again
  await acks.close();
});

test('the pauses of one flush stay within half the flush interval', async () => {
  const writes: number[] = [];
  const { acks } = writerWith(
    async () => {
      writes.push(performance.now());
    },
    { maxDevicesPerStatement: 1, pauseMs: 1000, flushMs: 200 },
  );
  for (let d = 0; d < 5; d++) acks.note('bob', `d${d}`, 1);
  await acks.flush();
  expect(writes).toHaveLength(5);
  // 4 pauses of at most 200 / 2 / 4 = 25 ms each, not 1 s.
  expect(writes[4]! - writes[0]!).toBeLessThan(500);
  await acks.close();
});

test('a failed statement keeps its devices and the rest for the next flush', async () => {
  let fail = true;
  const written: DeviceCursor[] = [];
  const { acks } = writerWith(
    async (cursors) => {
      if (fail && written.length > 0) throw new Error('database unavailable');
      written.push(...cursors);
    },
    { maxDevicesPerStatement: 2, pauseMs: 0 },
  );
  for (let d = 0; d < 5; d++) acks.note('carol', `d${d}`, d + 1);
  await acks.flush();
  expect(written.map((c) => c.deviceId)).toEqual(['d0', 'd1']);

  fail = false;
  await acks.flush();
  expect(written.map((c) => c.deviceId).sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
  await acks.close();
});

test('discard forgets unwritten cursors; a flush under way stops and keeps no failures', async () => {
  const written: DeviceCursor[] = [];
  let release: (ok: boolean) => void = () => undefined;
  const { acks } = writerWith(
    async (cursors) => {
      if (cursors.some((c) => c.deviceId === 'd0')) {
        // The statement is under way when the store epoch changes.
        const ok = await new Promise<boolean>((resolve) => (release = resolve));
        if (!ok) throw new Error('connection terminated');
      }
      written.push(...cursors);
    },
    { maxDevicesPerStatement: 1, pauseMs: 0 },
  );
  const race = async (ok: boolean): Promise<void> => {
    acks.note('dan', 'd0', 7);
    acks.note('dan', 'd1', 7);
    const flushing = acks.flush();
    await new Promise((resolve) => setImmediate(resolve));
    acks.discard();
    release(ok);
    await flushing;
    await acks.flush();
  };
  await race(false); // failed: not kept for the next flush
  expect(written).toEqual([]);
  await race(true); // went through: the next statement (d1) is not written
  expect(written.map((c) => c.deviceId)).toEqual(['d0']);

  written.length = 0;
  acks.note('dan', 'd2', 2);
  acks.discard();
  acks.note('dan', 'd3', 1); // a cursor of the new database
  await acks.flush();
  expect(written).toEqual([{ userId: 'dan', deviceId: 'd3', seq: 1 }]);
  await acks.close();
});

test('left to itself, it writes each device once per interval, a slice of them at a time', async () => {
  const writes: Write[] = [];
  const flushMs = 400;
  const { acks, order } = writerWith(
    async (cursors) => {
      writes.push({ cursors, at: performance.now() });
    },
    { flushMs, pauseMs: 0 },
  );
  const start = performance.now();
  for (let d = 0; d < 200; d++) acks.note('erin', `d${d}`, 1);
  const deadline = start + 10 * flushMs;
  while (writes.flatMap((w) => w.cursors).length < 200 && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 10));

  const written = writes.flatMap((w) => w.cursors.map((c) => c.deviceId));
  expect(new Set(written).size).toBe(200);
  expect(written).toHaveLength(200); // once each
  // Within one interval (and a slice of timer slack), in many small writes spread over it.
  const last = Math.max(...writes.map((w) => w.at));
  expect(last - start).toBeLessThan(2 * flushMs);
  expect(writes.length).toBeGreaterThanOrEqual(8);
  expect(Math.max(...writes.map((w) => w.cursors.length))).toBeLessThanOrEqual(40);
  expect(last - Math.min(...writes.map((w) => w.at))).toBeGreaterThanOrEqual(flushMs / 2);
  // The delivered watermarks go slice by slice with the cursors.
  const slices = new Set(order.filter((o) => o.startsWith('before:')));
  expect(slices.size).toBeGreaterThanOrEqual(9);
  expect([...slices].every((o) => o.endsWith('/10'))).toBe(true);
  await acks.close();
});
