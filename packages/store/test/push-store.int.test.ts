/**
 * Issue 18 in the store: push targets, the outbox's coalescing and leases, the preview setting.
 * Runs on plain PostgreSQL and (jest project `citus`) on Citus, where the stores here use
 * connections that refuse a statement reaching more than one shard (the scans for due rows and
 * the figures take their own multi-shard transaction).
 */
import type { PushTargetSpec } from '@chat/protocol';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { PgPushStore, PgRetentionStore, type Database, type PgChatStore } from '../src/index';
import { waitFor } from '@chat/testkit';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let db: Kysely<Database>;
let push: PgPushStore;

const WINDOW = 60_000;
const fcm = (token: string): PushTargetSpec => ({ kind: 'fcm', token });

beforeAll(async () => {
  fx = await storeFixture('push');
  store = await fx.store();
  db = fx.storeDb();
  push = new PgPushStore(db);
});
afterAll(async () => {
  await fx.close();
});

async function outboxRows(user: string): Promise<{ chat_id: string; pending: number }[]> {
  const { rows } = await sql<{ chat_id: string; pending: number }>`
    select chat_id, pending from push_outbox where user_id = ${user} order by chat_id`.execute(
    fx.db,
  );
  return rows;
}

describe('push targets', () => {
  it('reads the targets of many users in one call (per user shard on Citus)', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `tm-${i}`);
    for (const u of users) await store.connectDevice(u, 'phone', Date.now());
    await push.registerTarget('tm-3', 'phone', fcm('three'), 1);
    await push.registerTarget('tm-7', 'phone', fcm('seven'), 1);
    const all = await push.targetsOfUsers([...users, 'tm-3', 'nobody']);
    expect(all).toEqual(
      new Map([
        ['tm-3', new Map([['phone', fcm('three')]])],
        ['tm-7', new Map([['phone', fcm('seven')]])],
      ]),
    );
  });

  it('registers one target per device, replaces it, and removes it', async () => {
    await store.connectDevice('ta', 'phone', Date.now());
    await push.registerTarget('ta', 'phone', fcm('one'), 1);
    await push.registerTarget('ta', 'phone', fcm('two'), 2);
    expect(await push.targetsOf('ta')).toEqual(new Map([['phone', fcm('two')]]));
    // A provider's "gone" for the old token leaves the new one alone.
    expect(await push.removeGoneTarget('ta', 'phone', fcm('one'))).toBe(false);
    expect(await push.removeGoneTarget('ta', 'phone', fcm('two'))).toBe(true);
    expect(await push.targetsOf('ta')).toEqual(new Map());
    await push.registerTarget('ta', 'phone', fcm('three'), 3);
    expect(await push.removeTarget('ta', 'phone')).toBe(true);
    expect(await push.removeTarget('ta', 'phone')).toBe(false);
  });

  it('refuses a target for a device that does not exist', async () => {
    await expect(push.registerTarget('nobody', 'ghost', fcm('x'), 1)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('removes targets and outbox rows with the device', async () => {
    await store.connectDevice('tb', 'old', 1000);
    await push.registerTarget('tb', 'old', fcm('t'), 1);
    await push.enqueue('tb', [{ deviceId: 'old', chatId: 'c', from: 'x' }], 1, WINDOW);
    const gone = await new PgRetentionStore(fx.db).expireDevices(2000, Date.now(), 1000);
    expect(gone.devices).toBeGreaterThanOrEqual(1);
    expect(await push.targetsOf('tb')).toEqual(new Map());
    expect(await outboxRows('tb')).toEqual([]);
  });
});

describe('preview setting', () => {
  it('is off by default and kept per user', async () => {
    expect(await push.previews('pa')).toBe(false);
    await push.setPreviews('pa', true);
    expect(await push.previews('pa')).toBe(true);
    expect(await push.previews('pb')).toBe(false);
    await push.setPreviews('pa', false);
    expect(await push.previews('pa')).toBe(false);
  });
});

describe('the outbox', () => {
  it('coalesces per device and chat, and holds the next notification for the window', async () => {
    const user = 'oa';
    await store.connectDevice(user, 'd1', Date.now());
    await store.connectDevice(user, 'd2', Date.now());
    const t0 = 1_000_000;
    await push.enqueue(
      user,
      [
        { deviceId: 'd1', chatId: 'c1', from: 'bob' },
        { deviceId: 'd1', chatId: 'c1', from: 'bob' },
        { deviceId: 'd2', chatId: 'c1', from: 'bob' },
      ],
      t0,
      WINDOW,
    );
    await push.enqueue(user, [{ deviceId: 'd1', chatId: 'c2', from: 'carol' }], t0, WINDOW);
    const first = await push.claimDue('n1', t0, 30_000, 100, (u) => u === user);
    expect(first.map((c) => [c.deviceId, c.chatId, c.pending]).sort()).toEqual([
      ['d1', 'c1', 2],
      ['d1', 'c2', 1],
      ['d2', 'c1', 1],
    ]);
    // Leased: another node finds nothing while the lease lasts.
    expect(await push.claimDue('n2', t0 + 1, 30_000, 100, (u) => u === user)).toEqual([]);
    // A message arrives while the notification is being sent: it stays pending.
    await push.enqueue(user, [{ deviceId: 'd1', chatId: 'c1', from: 'bob' }], t0 + 2, WINDOW);
    for (const row of first) await push.sent(row, 'n1', t0 + 5, WINDOW);
    // Due only when the window since the last notification has passed.
    expect(await push.claimDue('n1', t0 + 5 + WINDOW - 1, 30_000, 100, (u) => u === user)).toEqual(
      [],
    );
    const next = await push.claimDue('n1', t0 + 5 + WINDOW, 30_000, 100, (u) => u === user);
    expect(next.map((c) => [c.deviceId, c.chatId, c.pending])).toEqual([['d1', 'c1', 1]]);
  });

  it('leaves rows of users the node does not own, and gives an expired lease to another node', async () => {
    const user = 'ob';
    await store.connectDevice(user, 'd', Date.now());
    const t0 = 2_000_000;
    await push.enqueue(user, [{ deviceId: 'd', chatId: 'c', from: 'x' }], t0, WINDOW);
    expect(await push.claimDue('n1', t0, 1000, 100, (u) => u === 'elsewhere')).toEqual([]);
    const [mine] = await push.claimDue('n1', t0, 1000, 100, (u) => u === user);
    expect(mine).toMatchObject({ userId: user, pending: 1 });
    // n1 died holding the lease: once it ends, n2 takes the row; n1's late report changes nothing.
    const [taken] = await push.claimDue('n2', t0 + 1000, 1000, 100, (u) => u === user);
    expect(taken).toMatchObject({ userId: user, pending: 1 });
    await push.sent(mine!, 'n1', t0 + 1001, WINDOW);
    expect(await outboxRows(user)).toEqual([{ chat_id: 'c', pending: 1 }]);
    await push.sent(taken!, 'n2', t0 + 1002, WINDOW);
    expect(await outboxRows(user)).toEqual([{ chat_id: 'c', pending: 0 }]);
  });

  it('reschedules a retry, counts attempts, and reports depth and age', async () => {
    const user = 'oc';
    await store.connectDevice(user, 'd', Date.now());
    const t0 = 3_000_000;
    await push.enqueue(user, [{ deviceId: 'd', chatId: 'c', from: 'x' }], t0, WINDOW);
    const isOc = (u: string): boolean => u === user;
    const [row] = await push.claimDue('n1', t0, 1000, 100, isOc);
    await push.retryAt(row!, 'n1', t0 + 5000, 'HTTP 503');
    expect(await push.claimDue('n1', t0 + 4999, 1000, 100, isOc)).toEqual([]);
    const [again] = await push.claimDue('n1', t0 + 5000, 1000, 100, isOc);
    expect(again).toMatchObject({ attempts: 1, queuedAt: t0 });
    const stats = await push.stats();
    expect(stats.depth).toBeGreaterThanOrEqual(1);
    expect(stats.oldestQueuedAt).toBeLessThanOrEqual(t0);
  });

  it('counts the unread messages of each device as its badge', async () => {
    const chat = await store.createChat('ua', ['ub'], null, Date.now());
    await store.connectDevice('ub', 'phone', Date.now());
    for (let i = 0; i < 3; i++) await store.send(sendInput('ua', chat.chatId));
    // The fan-out into inboxes follows the send's commit.
    await waitFor(async () => {
      const recipient = await push.recipient('ub');
      expect(recipient.badges.get('phone')).toBe(3);
      expect(recipient.previews).toBe(false);
    });
  });

  it('prunes rows that have nothing pending once their window ended', async () => {
    const user = 'od';
    await store.connectDevice(user, 'd', Date.now());
    await push.enqueue(user, [{ deviceId: 'd', chatId: 'c', from: 'x' }], 10, WINDOW);
    const [row] = await push.claimDue('n1', 10, 1000, 100, (u) => u === user);
    await push.sent(row!, 'n1', 20, WINDOW);
    await push.pruneIdle(20 + WINDOW - 1);
    expect(await outboxRows(user)).toHaveLength(1);
    await push.pruneIdle(20 + WINDOW + 1);
    expect(await outboxRows(user)).toEqual([]);
  });
});

describe('claiming among many nodes', () => {
  it('finds a node’s own due rows behind more than a batch of other nodes’ rows', async () => {
    const t0 = 5_000_000;
    const others = Array.from({ length: 12 }, (_, i) => `cm-other-${i}`);
    for (const user of [...others, 'cm-mine']) {
      await store.connectDevice(user, 'd', Date.now());
    }
    for (const user of others) {
      await push.enqueue(user, [{ deviceId: 'd', chatId: 'c', from: 'x' }], t0, WINDOW);
    }
    // Due later than all of the others' rows: last in the scan's order.
    await push.enqueue('cm-mine', [{ deviceId: 'd', chatId: 'c', from: 'x' }], t0 + 1, WINDOW);
    const claimed = await push.claimDue('n1', t0 + 1, 1000, 4, (u) => u.startsWith('cm-mine'));
    expect(claimed.map((c) => c.userId)).toEqual(['cm-mine']);
    const batch = await push.claimDue('n1', t0 + 1, 1000, 4, (u) => u.startsWith('cm-other'));
    expect(batch).toHaveLength(4);
  });
});
