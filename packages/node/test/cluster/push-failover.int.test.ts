/**
 * Issue 18, the outbox across nodes, with the real Web Push provider and the strict local push
 * service: a user moved to another node by a drain keeps its queued notifications (the new
 * owner sends them), and notifications a node was sending when it was SIGKILLed are still sent
 * after failover: at least once, with one collapse id (the Web Push Topic).
 */
import type { SdkUser, WebPushReceiver } from '@chat/testkit';
import { TestCluster, sdkUser, waitFor } from '@chat/testkit';
import type { LocalWebPush } from '../push/web-push-kit';
import { startLocalWebPush } from '../push/web-push-kit';

let cluster: TestCluster;
let receiver: WebPushReceiver;
let webPush: LocalWebPush;
let vapidPublicKey: string;
const open: SdkUser[] = [];

beforeAll(async () => {
  webPush = await startLocalWebPush('push-failover');
  ({ receiver, vapidPublicKey } = webPush);
  cluster = await TestCluster.start({
    nodes: 2,
    members: 1,
    leaseTtlSec: 3,
    nodeEnv: {
      ...webPush.nodeEnv,
      CHAT_PUSH_POLL_MS: '100',
      CHAT_PUSH_LEASE_MS: '3000',
      CHAT_PUSH_REQUEST_TIMEOUT_MS: '60000',
      CHAT_DRAIN_RATE: '50',
    },
  });
});
afterAll(async () => {
  await Promise.all(open.map((u) => u.client.close()));
  await cluster?.close();
  await webPush?.close();
});

async function connected(id: string): Promise<SdkUser> {
  const user = sdkUser(cluster.registryUrl, id);
  open.push(user);
  await user.client.connect();
  return user;
}

/** A user whose only device registered a Web Push subscription and went away. */
async function awayUser(id: string): Promise<{ id: string; subscription: string }> {
  const user = await connected(id);
  const sub = receiver.subscribe(vapidPublicKey);
  await user.client.registerPush({ kind: 'webpush', ...sub });
  await user.client.close();
  return { id, subscription: sub.endpoint.split('/').at(-1)! };
}

const deliveriesTo = (subscription: string) =>
  receiver.delivered.filter((d) => d.subscriptionId === subscription);

async function sentBy(nodeId: string): Promise<number> {
  const text = await (await fetch(`${cluster.node(nodeId).internalUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('chat_push_sent_total{'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

it('a user moved by a drain keeps its queue: the new owner sends it', async () => {
  const away = await Promise.all(Array.from({ length: 8 }, (_, i) => awayUser(`pm-${i}`)));
  const bob = await connected('pm-bob');
  const chats = await Promise.all(away.map((u) => bob.client.createChat([u.id])));
  // Every first attempt is answered 503 Retry-After 6 s: the notifications stay queued on node-1.
  receiver.faults.failNext(away.length, { kind: 'status', status: 503, retryAfter: '6' });
  for (const { chatId } of chats) await bob.client.send(chatId, 'while you were away');
  await waitFor(async () => {
    const { rows } = await cluster.sql.query<{ n: string }>(
      `select count(*) as n from push_outbox where attempts = 1 and pending > 0`,
    );
    expect(Number(rows[0]!.n)).toBe(away.length);
  }, 15_000);
  expect(receiver.delivered).toHaveLength(0);

  await cluster.setMembers(['node-1', 'node-2']);
  await cluster.viewsAgree();
  const owners = await Promise.all(away.map(async (u) => (await cluster.route(u.id)).node));
  const moved = owners.filter((o) => o === 'node-2').length;
  expect(moved).toBeGreaterThanOrEqual(1);

  for (const u of away)
    await waitFor(() => expect(deliveriesTo(u.subscription)).toHaveLength(1), 20_000);
  expect(await sentBy('node-2')).toBe(moved);
  expect(await sentBy('node-1')).toBe(away.length - moved);
});

it('notifications a node was sending when SIGKILLed are sent after failover, once per collapse id', async () => {
  // A user of node-2 (the node to be killed).
  let victimUser: { id: string; subscription: string } | undefined;
  for (let i = 0; victimUser === undefined && i < 64; i++) {
    if ((await cluster.route(`pk-${i}`)).node === 'node-2') victimUser = await awayUser(`pk-${i}`);
  }
  expect(victimUser).toBeDefined();
  const alice = victimUser!;
  const bob = open.find((u) => u.id === 'pm-bob')!;
  const { chatId } = await bob.client.createChat([alice.id]);
  // node-2's attempt hangs: it holds the lease when it dies.
  receiver.faults.failNext(1, { kind: 'hang' });
  await bob.client.send(chatId, 'are you there?');
  await waitFor(async () => {
    const { rows } = await cluster.sql.query(
      `select 1 from push_outbox where user_id = $1 and lease_owner = 'node-2'`,
      [alice.id],
    );
    expect(rows).toHaveLength(1);
  }, 15_000);
  cluster.node('node-2').signal('SIGKILL');

  // Lease TTL, then the push lease, then a poll: seconds; a loaded CI machine once took over 30.
  await waitFor(
    () => expect(deliveriesTo(alice.subscription).length).toBeGreaterThanOrEqual(1),
    60_000,
  ).catch(async (err: unknown) => {
    const { rows } = await cluster.sql.query(
      `select lease_owner, lease_until, due_at, attempts, pending, last_error from push_outbox
       where user_id = $1`,
      [alice.id],
    );
    const route = await cluster.route(alice.id).catch(() => undefined);
    throw new Error(
      `no notification after failover: outbox ${JSON.stringify(rows)}, route ${JSON.stringify(route)}, now ${Date.now()}; ${String(err)}`,
    );
  });
  const topics = new Set(deliveriesTo(alice.subscription).map((d) => d.topic));
  expect(topics.size).toBe(1);
  await waitFor(async () => {
    const { rows } = await cluster.sql.query<{ pending: number }>(
      `select pending from push_outbox where user_id = $1`,
      [alice.id],
    );
    expect(rows).toEqual([{ pending: 0 }]);
  });
});
