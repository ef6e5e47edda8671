/**
 * Issue 18 end to end: a node process with the real Web Push provider (@chat/push, VAPID and
 * aes128gcm) sending to the strict local push service of @chat/testkit, which verifies the
 * VAPID JWT and decrypts each payload with the subscription's key. SDK clients register
 * targets; what the push service received is what the user's device would show.
 */
import type { ChatClient } from '@chat/client';
import { ChatError } from '@chat/protocol';
import type { SingleNode, WebPushDelivery, WebPushReceiver } from '@chat/testkit';
import { waitFor } from '@chat/testkit';
import type { WebPushNode } from './web-push-kit';
import { startWebPushNode } from './web-push-kit';

const WINDOW_MS = 1500;
const ACK_WAIT_MS = 300;

let rig: WebPushNode;
let h: SingleNode;
let receiver: WebPushReceiver;
let vapidPublicKey: string;

beforeAll(async () => {
  rig = await startWebPushNode('push-delivery', {
    CHAT_PUSH_WINDOW_MS: String(WINDOW_MS),
    CHAT_PUSH_ACK_WAIT_MS: String(ACK_WAIT_MS),
    CHAT_PUSH_POLL_MS: '50',
  });
  h = rig.h;
  ({ receiver, vapidPublicKey } = rig.webPush);
});
afterAll(async () => {
  await rig?.close();
});

function connect(user: string, device = 'd1'): Promise<ChatClient> {
  return rig.connect(user, device, {
    backoffBaseMs: 20,
    backoffMaxMs: 200,
  });
}

/** A device of `user` that subscribes, registers its target and goes away. */
async function awayDevice(user: string): Promise<{ id: string }> {
  const client = await connect(user, 'phone');
  const subscription = receiver.subscribe(vapidPublicKey);
  await client.registerPush({ kind: 'webpush', ...subscription });
  await client.close();
  return { id: subscription.endpoint.split('/').at(-1)! };
}

function deliveriesTo(id: string): { at: number; delivery: WebPushDelivery }[] {
  return receiver.delivered
    .filter((d) => d.subscriptionId === id)
    .map((delivery) => ({ at: seen.get(delivery) ?? Date.now(), delivery }));
}

/** When each delivery was first seen by the test (polled every few ms while waiting). */
const seen = new Map<WebPushDelivery, number>();
function note(): void {
  for (const d of receiver.delivered) if (!seen.has(d)) seen.set(d, Date.now());
}

async function waitForDeliveries(id: string, n: number): Promise<void> {
  await waitFor(
    () => {
      note();
      expect(deliveriesTo(id).length).toBeGreaterThanOrEqual(n);
    },
    15_000,
    5,
  );
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${h.node.internalUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name)) total += Number(line.split(' ').at(-1));
  return total;
}

test('an away device gets one content-free notification per chat per window, with the unread badge', async () => {
  const phone = await awayDevice('pd-alice');
  const bob = await connect('pd-bob');
  const { chatId } = await bob.createChat(['pd-alice']);
  await bob.send(chatId, 'the secret body');
  await waitForDeliveries(phone.id, 1);
  await bob.send(chatId, 'second');
  await bob.send(chatId, 'third');
  await waitForDeliveries(phone.id, 2);
  const [first, second] = deliveriesTo(phone.id);
  // The two later messages went as one notification, and not before the window had passed.
  expect(second!.at - first!.at).toBeGreaterThanOrEqual(WINDOW_MS - 100);
  expect(JSON.parse(first!.delivery.plaintext)).toEqual({
    chatId,
    collapseId: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
    badge: 1,
  });
  expect(JSON.parse(second!.delivery.plaintext)).toMatchObject({ chatId, badge: 3 });
  expect(first!.delivery.topic).toBe(JSON.parse(first!.delivery.plaintext).collapseId);
  for (const d of deliveriesTo(phone.id))
    expect(d.delivery.plaintext).not.toMatch(/secret|second|third/);
  // Nothing more arrives for those three messages: the queue drains to nothing pending.
  await waitFor(async () => {
    const { rows } = await h.sql.query<{ pending: number }>(
      `select pending from push_outbox where user_id = 'pd-alice'`,
    );
    expect(rows).toEqual([{ pending: 0 }]);
  });
  expect(deliveriesTo(phone.id)).toHaveLength(2);
});

test('previews name the sender only once the user allowed them', async () => {
  const phone = await awayDevice('pv-alice');
  const settings = await connect('pv-alice', 'laptop');
  expect(await settings.pushSettings()).toEqual({ previews: false });
  expect(await settings.pushSettings({ previews: true })).toEqual({ previews: true });
  await settings.close();
  const bob = await connect('pv-bob');
  const { chatId } = await bob.createChat(['pv-alice']);
  await bob.send(chatId, 'hello');
  await waitForDeliveries(phone.id, 1);
  const payload = JSON.parse(deliveriesTo(phone.id)[0]!.delivery.plaintext);
  expect(payload).toMatchObject({ chatId, title: 'New message from pv-bob' });
  expect(payload).not.toHaveProperty('body');
});

test('a connected device that acks gets no notification', async () => {
  const alice = await connect('ca-alice', 'phone');
  const subscription = receiver.subscribe(vapidPublicKey);
  await alice.registerPush({ kind: 'webpush', ...subscription });
  const got: string[] = [];
  alice.on('event', (e) => {
    if (e.kind === 'message') got.push(e.body ?? '');
  });
  // A second user, away, as the witness that notifications flow meanwhile.
  const witness = await awayDevice('ca-witness');
  const bob = await connect('ca-bob');
  const { chatId } = await bob.createChat(['ca-alice', 'ca-witness']);
  await bob.send(chatId, 'hi both');
  await waitFor(() => expect(got).toEqual(['hi both']));
  await waitForDeliveries(witness.id, 1);
  // The ack wait passed and the node decided: nothing awaits an ack, nothing was queued for alice.
  await waitFor(async () => {
    const stats = (await (await fetch(`${h.node.internalUrl}/v1/stats`)).json()) as {
      push: { awaitingAck: number };
    };
    expect(stats.push.awaitingAck).toBe(0);
  });
  await bob.send(chatId, 'again');
  await waitForDeliveries(witness.id, 2);
  const { rows } = await h.sql.query(`select * from push_outbox where user_id = 'ca-alice'`);
  expect(rows).toEqual([]);
  expect(
    receiver.delivered.filter((d) => subscription.endpoint.endsWith(d.subscriptionId)),
  ).toEqual([]);
});

test('a subscription the push service says is gone (410) is removed', async () => {
  const phone = await awayDevice('gn-alice');
  receiver.faults.markGone(phone.id);
  const goneBefore = await metric('chat_push_failed_total{provider="webpush",reason="gone"');
  const bob = await connect('gn-bob');
  const { chatId } = await bob.createChat(['gn-alice']);
  await bob.send(chatId, 'anyone there?');
  await waitFor(async () => {
    const { rows } = await h.sql.query(`select * from push_targets where user_id = 'gn-alice'`);
    expect(rows).toEqual([]);
  });
  expect(await metric('chat_push_failed_total{provider="webpush",reason="gone"')).toBe(
    goneBefore + 1,
  );
  expect(receiver.refused.some((r) => r.status === 410)).toBe(true);
});

test('registration refuses private endpoints unless allowed, and bad keys with BAD_REQUEST', async () => {
  const client = await connect('rg-alice');
  const subscription = receiver.subscribe(vapidPublicKey);
  const bad = { ...subscription, keys: { ...subscription.keys, auth: 'AAAA' } };
  const err = await client.registerPush({ kind: 'webpush', ...bad }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ChatError);
  expect((err as ChatError).code).toBe('BAD_REQUEST');
  expect((err as ChatError).message).toMatch(/auth must be 16 bytes/);
  await client.registerPush({ kind: 'fcm', token: 'abc:def' });
  await client.removePush();
  const { rows } = await h.sql.query(`select * from push_targets where user_id = 'rg-alice'`);
  expect(rows).toEqual([]);
});
