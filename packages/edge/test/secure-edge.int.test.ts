/**
 * Clients over TLS end to end: a cluster behind the nginx edge (local CA, loopback), the SDK
 * trusting that CA finds its node through `https://<edge>/v1/route`, connects over
 * `wss://<edge>/n/<node>/ws` and chats with a user on another node. A node that joins later is
 * routed once the edge reloaded its configuration, users moved to it follow `moved` frames that
 * name the edge as well, and the web page is served over https.
 */
import type { EventFrame } from '@chat/protocol';
import { ChatClient } from '@chat/client';
import { buildRing } from '@chat/ring';
import type { LocalTls } from '@chat/testkit';
import { TestCluster, createLocalTls, testToken, trustingTransport, waitFor } from '@chat/testkit';

let tls: LocalTls;
let cluster: TestCluster;
interface User {
  readonly name: string;
  readonly client: ChatClient;
  readonly events: EventFrame[];
  /** URLs of the `moved` frames it was sent. */
  readonly moved: string[];
}
const users: User[] = [];

beforeAll(async () => {
  tls = await createLocalTls();
  cluster = await TestCluster.start({ nodes: 2, tls, edge: true, web: true, devTokens: true });
}, 120_000);
afterAll(async () => {
  await Promise.allSettled(users.map((u) => u.client.close()));
  await cluster?.close();
  await tls?.close();
});

function sdk(name: string): User {
  const client = new ChatClient({
    registryUrl: cluster.publicUrl,
    user: name,
    token: () => testToken(name, 'd1'),
    backoffBaseMs: 50,
    backoffMaxMs: 500,
    ...trustingTransport(tls.ca.cert),
  });
  const user: User = { name, client, events: [], moved: [] };
  client.on('event', (e) => void user.events.push(e));
  client.on('moved', (m) => void user.moved.push(m.url));
  users.push(user);
  return user;
}

/** A user the registry places on `nodeId`. */
async function userOn(nodeId: string, prefix: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    if ((await cluster.route(`${prefix}-${i}`)).node === nodeId) return `${prefix}-${i}`;
  }
  throw new Error(`no user of ${nodeId} among 500`);
}

const messagesOf = (events: EventFrame[]): unknown[] =>
  events.filter((e) => e.kind === 'message').map((e) => (e as { body?: string }).body);

test('the registry hands out wss routes through the edge, over https', async () => {
  const { fetch } = trustingTransport(tls.ca.cert);
  const res = await fetch(`${cluster.publicUrl}/v1/route?user=alice`);
  expect(res.status).toBe(200);
  const route = (await res.json()) as { node: string; url: string };
  expect(route.url).toBe(`wss://127.0.0.1:${cluster.edge!.port}/n/${route.node}/ws`);
  expect(cluster.publicUrl).toMatch(/^https:\/\//);
});

test('two users on two nodes chat over wss through the edge', async () => {
  const alice = sdk(await userOn('node-1', 'alice'));
  const bob = sdk(await userOn('node-2', 'bob'));
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  expect([alice.client.state.node, bob.client.state.node]).toEqual(['node-1', 'node-2']);

  const { chatId } = await alice.client.createChat([bob.name]);
  await alice.client.send(chatId, 'hello over wss');
  await waitFor(() => expect(messagesOf(bob.events)).toEqual(['hello over wss']), 15_000);
});

test('a node that joins is routed after the edge reloads; moved users follow the edge', async () => {
  const carol = sdk(await userOn('node-2', 'carol'));
  // A user on node-1 now whom the ring with node-3 gives to node-3: it will be told `moved`.
  const three = buildRing(['node-1', 'node-2', 'node-3'].map((id) => ({ id, weight: 1 })));
  let erinName = '';
  for (let i = 0; erinName === '' && i < 500; i++) {
    const name = `erin-${i}`;
    if (three.owner(name) === 'node-3' && (await cluster.route(name)).node === 'node-1')
      erinName = name;
  }
  const erin = sdk(erinName);
  await Promise.all([carol.client.connect(), erin.client.connect()]);
  await cluster.startNode('node-3');
  await cluster.edgeRoutes(['node-3']);
  await cluster.setMembers(['node-1', 'node-2', 'node-3']);
  await cluster.registryLiveMembers(3);
  await cluster.viewsAgree();

  const dave = sdk(await userOn('node-3', 'dave'));
  await dave.client.connect();
  expect(dave.client.state.node).toBe('node-3');
  const { chatId } = await carol.client.createChat([dave.name]);
  await carol.client.send(chatId, 'to the new node');
  await waitFor(() => expect(messagesOf(dave.events)).toEqual(['to the new node']), 15_000);

  // Everyone is where the new ring puts them: those it moved were told so with the edge's URL.
  await waitFor(async () => {
    for (const u of users) {
      expect(u.client.state).toEqual({ status: 'ready', node: (await cluster.route(u.name)).node });
    }
  }, 20_000);
  expect(erin.moved).toEqual([`wss://127.0.0.1:${cluster.edge!.port}/n/node-3/ws`]);
  const moved = users.flatMap((u) => u.moved);
  for (const url of moved) expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/n\/node-\d\/ws$/);
});

test('the web chat page is served over https', async () => {
  // Node's own fetch does not trust the local CA: the certificate is really checked.
  await expect(globalThis.fetch(`${cluster.publicUrl}/chat/`)).rejects.toMatchObject({
    cause: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
  });
  const { fetch } = trustingTransport(tls.ca.cert);
  const page = await fetch(`${cluster.publicUrl}/chat/`);
  expect(page.status).toBe(200);
});
