/**
 * Three nodes, 300 users spread over them: messages cross nodes through RPC, the registry and
 * every node agree on owners (also after a membership change), and a user who connects to
 * the wrong node is told `moved` and the SDK follows it.
 */
import { ChatClient } from '@chat/client';
import type { EventFrame, ServerFrame } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import { RawClient, TestCluster, prng, registryOwners, testToken, waitFor } from '@chat/testkit';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
});
afterAll(async () => {
  await cluster.close();
});

interface User {
  readonly id: string;
  readonly client: ChatClient;
  readonly events: EventFrame[];
  node: string | null;
}

function sdkUser(id: string): User {
  const client = new ChatClient({
    registryUrl: cluster.registryUrl,
    user: id,
    token: () => testToken(id, 'd1'),
    backoffBaseMs: 50,
    backoffMaxMs: 1000,
  });
  const user: User = { id, client, events: [], node: null };
  client.on('event', (e) => user.events.push(e));
  client.on('welcome', (w) => (user.node = w.node));
  return user;
}

/** Every node places `users` where the registry routes them, on `epoch` (1,000 users a query). */
async function expectAgreement(users: readonly string[], epoch: number): Promise<void> {
  const fromRegistry = await registryOwners(cluster.registryUrl, users);
  for (const node of cluster.nodes.keys()) {
    for (let i = 0; i < users.length; i += 1000) {
      const slice = users.slice(i, i + 1000);
      const view = await cluster.ownersAt(node, slice);
      expect(view.epoch).toBe(epoch);
      for (const u of slice) expect(view.owners[u]).toBe(fromRegistry.get(u));
    }
  }
}

it('spreads 300 users over three nodes and delivers every acked message, across nodes', async () => {
  const users = Array.from({ length: 300 }, (_, i) => sdkUser(`u${i}`));
  await Promise.all(users.map((u) => u.client.connect()));
  const routes = await registryOwners(
    cluster.registryUrl,
    users.map((u) => u.id),
  );
  for (const u of users) expect(u.node).toBe(routes.get(u.id));
  const perNode = new Map<string, number>();
  for (const u of users) perNode.set(u.node!, (perNode.get(u.node!) ?? 0) + 1);
  expect([...perNode.keys()].sort()).toEqual(['node-1', 'node-2', 'node-3']);

  const rnd = prng(42);
  const pick = (): User => users[Math.floor(rnd() * users.length)]!;
  const chats: Array<{ chatId: string; members: User[] }> = [];
  for (let i = 0; i < 40; i++) {
    const a = pick();
    let b = pick();
    while (b === a) b = pick();
    const { chatId } = await a.client.createChat([b.id]);
    chats.push({ chatId, members: [a, b] });
  }
  for (let i = 0; i < 10; i++) {
    const members = [...new Set(Array.from({ length: 8 }, pick))];
    const { chatId } = await members[0]!.client.createChat(
      members.slice(1).map((m) => m.id),
      `group ${i}`,
    );
    chats.push({ chatId, members });
  }
  const sent: Array<{ messageId: string; chat: (typeof chats)[number]; sender: User }> = [];
  await Promise.all(
    Array.from({ length: 400 }, async (_, i) => {
      const chat = chats[i % chats.length]!;
      const sender = chat.members[i % chat.members.length]!;
      const { messageId } = await sender.client.send(chat.chatId, `m${i}`);
      sent.push({ messageId, chat, sender });
    }),
  );
  const crossNode = sent.filter((s) => s.chat.members.some((m) => m.node !== s.sender.node));
  expect(crossNode.length).toBeGreaterThan(100);
  // Every other member gets each message once; the sending device has it from its `ok`.
  await waitFor(() => {
    for (const s of sent) {
      for (const m of s.chat.members) {
        if (m === s.sender) continue;
        const got = m.events.filter(
          (e) => e.kind === 'message' && e.chatId === s.chat.chatId && e.messageId === s.messageId,
        );
        expect(got).toHaveLength(1);
      }
    }
  }, 30_000);
  // Per-user sequences are contiguous: no holes, no duplicates.
  for (const u of users) expect(u.events.map((e) => e.seq)).toEqual(u.events.map((_, i) => i + 1));
  await Promise.all(users.map((u) => u.client.close()));
});

it('has the registry and every node agree on the owner of 10,000 users, also after a membership change', async () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => `agree-${i}`);
  const { epoch } = await cluster.registryRing();
  await expectAgreement(ids, epoch);

  const next = await cluster.setMembers(['node-1', 'node-2']);
  await waitFor(async () => {
    expect((await cluster.registryRing()).epoch).toBe(next);
    for (const node of cluster.nodes.keys())
      expect((await cluster.ownersAt(node, ['x'])).epoch).toBe(next);
  });
  await expectAgreement(ids, next);
  const owners = await registryOwners(cluster.registryUrl, ids.slice(0, 500));
  expect([...owners.values()]).not.toContain('node-3');

  await cluster.setMembers(['node-1', 'node-2', 'node-3']);
});

it('tells a user on the wrong node where to go, and the SDK follows', async () => {
  const user = 'wanderer';
  await waitFor(async () =>
    expect((await cluster.ownersAt('node-1', [user])).owners[user]).toMatch(/node-[123]/),
  );
  const owner = (await cluster.route(user)).node;
  const wrong = [...cluster.nodes.values()].find((n) => n.nodeId !== owner)!;

  const raw = await RawClient.connect({ url: wrong.url, codec: jsonCodec, user });
  const moved = await raw.next((f) => f.t === 'moved');
  expect(moved).toEqual({
    t: 'moved',
    node: owner,
    url: cluster.node(owner).url,
    epoch: expect.any(Number),
  });
  expect((await raw.closed).code).toBe(4001);

  const client = new ChatClient({ url: wrong.url, user, token: () => testToken(user, 'd2') });
  const welcomes: ServerFrame[] = [];
  client.on('welcome', (w) => welcomes.push(w));
  await client.connect();
  expect(welcomes.at(-1)).toMatchObject({ node: owner });
  await client.close();
});
