import type { PushTargetSpec } from '@chat/protocol';
import type { Delivery, PushIntent } from '@chat/store';
import pino from 'pino';
import { PushQueuer } from '../../src/push/push-queuer';
import type { DeviceTargets } from '../../src/push/targets-cache';
import { TargetsCache } from '../../src/push/targets-cache';

const fcm = (token: string): PushTargetSpec => ({ kind: 'fcm', token });

function message(userId: string, seq: number, from = 'bob', chatId = 'c1'): Delivery {
  return {
    userId,
    event: {
      seq,
      kind: 'message',
      chatId,
      messageId: String(seq),
      from,
      body: 'secret',
      attachments: [],
      ts: 0,
    },
  };
}

interface Fixture {
  queuer: PushQueuer;
  clock: { now: number };
  loads: string[];
  /** Users per load. */
  batches: number[];
  queued: { user: string; intents: readonly PushIntent[] }[];
  connected: Set<string>;
  owned: Set<string>;
  cache: TargetsCache;
}

function fixture(targets: Record<string, DeviceTargets>, ackWaitMs = 3000): Fixture {
  const clock = { now: 1000 };
  const loads: string[] = [];
  const batches: number[] = [];
  const queued: { user: string; intents: readonly PushIntent[] }[] = [];
  const connected = new Set<string>();
  const owned = new Set(Object.keys(targets));
  const cache = new TargetsCache(
    (users) => {
      loads.push(...users);
      batches.push(users.length);
      return Promise.resolve(new Map(users.map((u) => [u, targets[u] ?? new Map()])));
    },
    () => clock.now,
    { ttlMs: 60_000, maxUsers: 100 },
  );
  const queuer = new PushQueuer({
    targets: cache,
    enqueue: (user, intents) => {
      queued.push({ user, intents });
      return Promise.resolve();
    },
    isConnected: (user, device) => connected.has(`${user}/${device}`),
    isOwned: (user) => owned.has(user),
    now: () => clock.now,
    log: pino({ level: 'silent' }),
    ackWaitMs,
  });
  return { queuer, clock, loads, batches, queued, connected, owned, cache };
}

describe('PushQueuer', () => {
  it('queues a message for every away device with a target, reading targets once per user', async () => {
    const f = fixture({
      alice: new Map([
        ['phone', fcm('p')],
        ['tablet', fcm('t')],
      ]),
      carol: new Map(),
    });
    f.queuer.onDelivered([message('alice', 1), message('carol', 1)]);
    await f.queuer.flush();
    f.queuer.onDelivered([message('alice', 2), message('carol', 2)]);
    await f.queuer.flush();
    expect(f.loads.sort()).toEqual(['alice', 'carol']);
    // The users of one delivered batch are read together.
    expect(f.batches).toEqual([2]);
    expect(f.queued).toEqual([
      {
        user: 'alice',
        intents: [
          { deviceId: 'phone', chatId: 'c1', from: 'bob' },
          { deviceId: 'tablet', chatId: 'c1', from: 'bob' },
        ],
      },
      {
        user: 'alice',
        intents: [
          { deviceId: 'phone', chatId: 'c1', from: 'bob' },
          { deviceId: 'tablet', chatId: 'c1', from: 'bob' },
        ],
      },
    ]);
  });

  it('ignores the user’s own messages, other kinds of event, and users owned elsewhere', async () => {
    const f = fixture({ alice: new Map([['phone', fcm('p')]]), dave: new Map([['x', fcm('x')]]) });
    f.owned.delete('dave');
    const chatEvent: Delivery = {
      userId: 'alice',
      event: {
        seq: 2,
        kind: 'chat',
        chatId: 'c1',
        change: 'created',
        members: [],
        by: 'bob',
        ts: 0,
      },
    };
    f.queuer.onDelivered([message('alice', 1, 'alice'), chatEvent, message('dave', 1)]);
    await f.queuer.flush();
    expect(f.queued).toEqual([]);
  });

  it('notifies a connected device only when it has not acked within the ack wait', async () => {
    const f = fixture(
      {
        alice: new Map([
          ['phone', fcm('p')],
          ['laptop', fcm('l')],
        ]),
      },
      3000,
    );
    f.connected.add('alice/phone');
    f.connected.add('alice/laptop');
    await f.cache.get('alice');
    f.queuer.onDelivered([message('alice', 7)]);
    expect(f.queuer.awaitingCount).toBe(2);
    f.queuer.noteAck('alice', 'phone', 7);
    f.clock.now += 2999;
    f.queuer.checkAcks();
    expect(f.queued).toEqual([]);
    f.clock.now += 1;
    f.queuer.checkAcks();
    await f.queuer.flush();
    expect(f.queued).toEqual([
      { user: 'alice', intents: [{ deviceId: 'laptop', chatId: 'c1', from: 'bob' }] },
    ]);
    expect(f.queuer.awaitingCount).toBe(0);
  });

  it('reads targets again after an invalidation', async () => {
    const targets: Record<string, DeviceTargets> = { alice: new Map() };
    const f = fixture(targets);
    f.queuer.onDelivered([message('alice', 1)]);
    await f.queuer.flush();
    targets['alice'] = new Map([['phone', fcm('p')]]);
    f.queuer.onDelivered([message('alice', 2)]);
    await f.queuer.flush();
    expect(f.queued).toEqual([]);
    f.cache.invalidate('alice');
    f.queuer.onDelivered([message('alice', 3)]);
    await f.queuer.flush();
    expect(f.loads).toEqual(['alice', 'alice']);
    expect(f.queued).toEqual([
      { user: 'alice', intents: [{ deviceId: 'phone', chatId: 'c1', from: 'bob' }] },
    ]);
  });
});

describe('TargetsCache', () => {
  it('does not cache a load that an invalidation overtook, however many users were invalidated', async () => {
    let finish!: (targets: ReadonlyMap<string, DeviceTargets>) => void;
    const cache = new TargetsCache(
      () => new Promise((resolve) => (finish = resolve)),
      () => 0,
      { ttlMs: 60_000, maxUsers: 1 },
    );
    const loading = cache.get('alice');
    // Alice removes her target while her targets are read; other users change theirs too.
    cache.invalidate('alice');
    cache.invalidate('bob');
    cache.invalidate('cy');
    finish(new Map([['alice', new Map([['phone', fcm('stale')]])]]));
    await loading;
    expect(cache.peek('alice')).toBeUndefined();
  });
});
