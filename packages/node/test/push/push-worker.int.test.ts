/**
 * The delivery worker against real Postgres, with an injected clock and providers written here
 * (the @chat/push contract): sends, coalescing per window, Retry-After scheduling, backoff,
 * gone targets removed, give-up, per-provider concurrency, previews, and two nodes sharing rows.
 */
import type {
  PushNotification,
  PushProvider,
  PushProviders,
  PushResult,
  PushTarget,
} from '@chat/push';
import type { PushTargetSpec } from '@chat/protocol';
import { PgChatStore, PgPushStore, createDatabase, migrate } from '@chat/store';
import pino from 'pino';
import { createEngineTestDatabase, waitFor } from '@chat/testkit';
import type { TestDatabase } from '@chat/testkit';
import { collapseIdOf } from '../../src/push/notification';
import type { PushWorkerOptions } from '../../src/push/push-worker';
import { PushWorker } from '../../src/push/push-worker';

let testDb: TestDatabase;
let db: ReturnType<typeof createDatabase>;
let chats: PgChatStore;
let push: PgPushStore;

beforeAll(async () => {
  testDb = await createEngineTestDatabase('pushworker');
  db = createDatabase(testDb.url, { maxConnections: 4 });
  await migrate(db);
  chats = new PgChatStore(db, { maxMembersPerChat: 10, nodeId: 'pw' });
  push = new PgPushStore(db);
});
afterAll(async () => {
  await chats.close();
  await db.destroy();
  await testDb.drop();
});

interface Call {
  readonly target: PushTarget;
  readonly notification: PushNotification;
  readonly at: number;
}

/** A provider of one kind that answers from a script (then `sent`), recording every call. */
class ScriptedProvider implements PushProvider {
  readonly calls: Call[] = [];
  readonly script: PushResult[] = [];
  inflight = 0;
  maxInflight = 0;
  gate: Promise<void> | undefined;

  constructor(
    readonly kind: PushTarget['kind'],
    private readonly clock: { now: number },
  ) {}

  async send(target: PushTarget, notification: PushNotification): Promise<PushResult> {
    this.calls.push({ target, notification, at: this.clock.now });
    this.inflight += 1;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    try {
      await this.gate;
      return this.script.shift() ?? { outcome: 'sent' };
    } finally {
      this.inflight -= 1;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const OPTIONS: PushWorkerOptions = {
  windowMs: 60_000,
  leaseMs: 30_000,
  pollMs: 1000,
  batch: 100,
  concurrency: 2,
  retry: { baseMs: 1000, maxMs: 120_000, maxAttempts: 4 },
  ttlSeconds: 3600,
  statsMs: 5000,
};

let userCounter = 0;

function rig(
  node: string,
  owned: (u: string) => boolean,
  clock = { now: 10_000_000 },
  options: PushWorkerOptions = OPTIONS,
) {
  const fcm = new ScriptedProvider('fcm', clock);
  const webpush = new ScriptedProvider('webpush', clock);
  const providers: Pick<PushProviders, 'providerFor'> = {
    providerFor: (t) => (t.kind === 'fcm' ? fcm : t.kind === 'webpush' ? webpush : undefined),
  };
  const failures: string[] = [];
  const gone: string[] = [];
  const worker = new PushWorker({
    nodeId: node,
    store: push,
    providers,
    isOwned: owned,
    now: () => clock.now,
    log: pino({ level: 'silent' }),
    options,
    events: { sent: () => undefined, failed: (kind, reason) => failures.push(`${kind}:${reason}`) },
    onTargetGone: (u) => gone.push(u),
  });
  return { worker, fcm, webpush, clock, failures, gone };
}

/** A user with one device registered for `target`, owned by the test. */
async function userWith(target: PushTargetSpec, device = 'phone'): Promise<string> {
  const user = `pw-${++userCounter}`;
  await chats.connectDevice(user, device, Date.now());
  await push.registerTarget(user, device, target, 1);
  return user;
}

const only = (user: string) => (u: string) => u === user;

/** Queues the notification of one message in `chatId` from `from` for the user's phone. */
async function notifyPhone(user: string, at: number, chatId: string, from: string): Promise<void> {
  await push.enqueue(user, [{ deviceId: 'phone', chatId, from }], at, OPTIONS.windowMs);
}

describe('PushWorker', () => {
  it('sends one content-free notification per chat per window, with the collapse id and badge', async () => {
    const user = await userWith({ kind: 'fcm', token: 'tok-1' });
    const r = rig('n1', only(user));
    const w = r.worker;
    const t0 = r.clock.now;
    for (let i = 0; i < 3; i++) {
      await notifyPhone(user, t0, 'chat-a', 'bob');
    }
    expect(await w.tick()).toBe(1);
    expect(r.fcm.calls).toHaveLength(1);
    expect(r.fcm.calls[0]!.notification).toEqual({
      collapseId: collapseIdOf('chat-a'),
      chatId: 'chat-a',
      badge: 0,
      ttlSeconds: 3600,
    });
    // More messages inside the window wait for it to end, then go as one.
    await notifyPhone(user, t0 + 10, 'chat-a', 'bob');
    await notifyPhone(user, t0 + 20, 'chat-a', 'bob');
    r.clock.now = t0 + OPTIONS.windowMs - 1;
    expect(await w.tick()).toBe(0);
    r.clock.now = t0 + OPTIONS.windowMs;
    expect(await w.tick()).toBe(1);
    expect(r.fcm.calls).toHaveLength(2);
    r.clock.now += 10 * OPTIONS.windowMs;
    expect(await w.tick()).toBe(0);
  });

  it('names the sender only when the user allowed previews', async () => {
    const user = await userWith({ kind: 'fcm', token: 'tok-2' });
    await push.setPreviews(user, true);
    const r = rig('n1', only(user));
    const w = r.worker;
    await notifyPhone(user, r.clock.now, 'c', 'ada');
    await w.tick();
    expect(r.fcm.calls[0]!.notification.title).toBe('New message from ada');
    expect(JSON.stringify(r.fcm.calls[0]!.notification)).not.toMatch(/body/);
  });

  it('retries at the Retry-After the provider gave, then with doubling backoff, then gives up', async () => {
    const user = await userWith({ kind: 'fcm', token: 'tok-3' });
    const r = rig('n1', only(user));
    const w = r.worker;
    const t0 = r.clock.now;
    r.fcm.script.push(
      { outcome: 'retry', reason: 'HTTP 429', retryAfterMs: 7000 },
      { outcome: 'retry', reason: 'HTTP 503' },
      { outcome: 'retry', reason: 'HTTP 503' },
      { outcome: 'retry', reason: 'HTTP 503' },
    );
    await notifyPhone(user, t0, 'c', 'x');
    await w.tick();
    // Retry-After 7 s: not at 6.999 s, at 7 s.
    r.clock.now = t0 + 6999;
    expect(await w.tick()).toBe(0);
    r.clock.now = t0 + 7000;
    expect(await w.tick()).toBe(1);
    // Second failure without Retry-After: 2 s (base 1 s doubled once).
    r.clock.now = t0 + 7000 + 1999;
    expect(await w.tick()).toBe(0);
    r.clock.now = t0 + 9000;
    expect(await w.tick()).toBe(1);
    r.clock.now = t0 + 9000 + 4000;
    expect(await w.tick()).toBe(1);
    expect(r.fcm.calls.map((c) => c.at - t0)).toEqual([0, 7000, 9000, 13_000]);
    expect(r.failures).toEqual(['fcm:retry', 'fcm:retry', 'fcm:retry', 'fcm:gave_up']);
    r.clock.now += 3_600_000;
    expect(await w.tick()).toBe(0);
  });

  it('removes a target the provider says is gone, and sends nothing more to it', async () => {
    const target: PushTargetSpec = {
      kind: 'webpush',
      endpoint: 'https://push.example.com/x',
      keys: { p256dh: `B${'A'.repeat(86)}`, auth: 'A'.repeat(22) },
    };
    const user = await userWith(target);
    const r = rig('n1', only(user));
    const w = r.worker;
    r.webpush.script.push({ outcome: 'gone', reason: 'HTTP 410' });
    await notifyPhone(user, r.clock.now, 'c', 'x');
    await w.tick();
    expect(await push.targetsOf(user)).toEqual(new Map());
    expect(r.gone).toEqual([user]);
    expect(r.failures).toEqual(['webpush:gone']);
    r.clock.now += OPTIONS.windowMs;
    await notifyPhone(user, r.clock.now, 'c', 'x');
    r.clock.now += OPTIONS.windowMs;
    await w.tick();
    expect(r.webpush.calls).toHaveLength(1);
  });

  it('keeps at most `concurrency` requests in flight per provider', async () => {
    const users = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => userWith({ kind: 'fcm', token: `tok-c${i}` })),
    );
    const set = new Set(users);
    const r = rig('n1', (u) => set.has(u));
    const w = r.worker;
    let open!: () => void;
    r.fcm.gate = new Promise((resolve) => (open = resolve));
    for (const user of users) {
      await notifyPhone(user, r.clock.now, 'c', 'x');
    }
    const tick = w.tick();
    await waitFor(() => expect(r.fcm.inflight).toBe(OPTIONS.concurrency));
    expect(r.fcm.calls).toHaveLength(OPTIONS.concurrency);
    open();
    expect(await tick).toBe(5);
    expect(r.fcm.calls).toHaveLength(5);
    expect(r.fcm.maxInflight).toBe(OPTIONS.concurrency);
  });

  it('leaves a row that waited for its provider past half its lease to its next claim', async () => {
    const users = await Promise.all(
      [1, 2, 3].map((i) => userWith({ kind: 'fcm', token: `tok-l${i}` })),
    );
    const set = new Set(users);
    const r = rig('n1', (u) => set.has(u));
    let open!: () => void;
    r.fcm.gate = new Promise((resolve) => (open = resolve));
    for (const user of users) await notifyPhone(user, r.clock.now, 'c', 'x');
    const tick = r.worker.tick();
    await waitFor(() => expect(r.fcm.inflight).toBe(OPTIONS.concurrency));
    r.clock.now += OPTIONS.leaseMs / 2 + 1;
    open();
    expect(await tick).toBe(3);
    // The third waited in the limiter past half the lease: not sent now...
    expect(r.fcm.calls).toHaveLength(2);
    expect(await r.worker.tick()).toBe(0);
    // ...but once the lease ended, by whoever claims it then.
    r.clock.now += OPTIONS.leaseMs;
    expect(await r.worker.tick()).toBe(1);
    expect(r.fcm.calls).toHaveLength(3);
  });

  it('keeps sending while one provider hangs: the loop does not wait for its requests', async () => {
    const hung = await userWith({ kind: 'fcm', token: 'tok-hung' });
    const target: PushTargetSpec = {
      kind: 'webpush',
      endpoint: 'https://push.example.com/y',
      keys: { p256dh: `B${'A'.repeat(86)}`, auth: 'A'.repeat(22) },
    };
    const other = await userWith(target);
    const r = rig('n1', (u) => u === hung || u === other, undefined, { ...OPTIONS, pollMs: 20 });
    let open!: () => void;
    r.fcm.gate = new Promise((resolve) => (open = resolve));
    await notifyPhone(hung, r.clock.now, 'c', 'x');
    r.worker.start();
    try {
      await waitFor(() => expect(r.fcm.inflight).toBe(1));
      // Queued while the FCM request hangs: Web Push goes all the same.
      await notifyPhone(other, r.clock.now, 'c', 'x');
      await waitFor(() => expect(r.webpush.calls).toHaveLength(1), 5_000);
      expect(r.fcm.inflight).toBe(1);
    } finally {
      open();
      await r.worker.stop();
    }
    expect(r.fcm.calls).toHaveLength(1);
  });

  it('lets only one of two nodes that both own a user send a row', async () => {
    const clock = { now: 20_000_000 };
    const user = await userWith({ kind: 'fcm', token: 'tok-dual' });
    const a = rig('na', only(user), clock);
    const b = rig('nb', only(user), clock);
    await notifyPhone(user, clock.now, 'c', 'x');
    const claimed = await Promise.all([a.worker.tick(), b.worker.tick()]);
    expect(claimed.sort()).toEqual([0, 1]);
    expect(a.fcm.calls.length + b.fcm.calls.length).toBe(1);
  });
});
