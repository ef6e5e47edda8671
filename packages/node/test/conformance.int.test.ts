/**
 * Protocol v1 conformance against real node processes and real Postgres, run once per codec.
 * Asserts on what clients observe (frames, close codes) and on rows in the database.
 *
 * In the jest `integration` project it runs against one node on plain PostgreSQL; in the
 * `citus` project against a cluster of three nodes on Citus, each user connected to the node
 * that owns it (so every exchange between two users may cross nodes and shards).
 */
import type { Codec, ServerFrame } from '@chat/protocol';
import { jsonCodec, msgpackCodec } from '@chat/protocol';
import type { Pool } from 'pg';
import {
  RawClient,
  TestCluster,
  countRows,
  startSingleNode,
  testEngineIsCitus,
  waitFor,
} from '@chat/testkit';

/** Where the suite's users connect, and the database to check. */
interface Target {
  readonly sql: Pool;
  /** The node a user connects to, and the ring epoch, as the registry answers. */
  nodeOf(
    user: string,
  ): Promise<{ readonly nodeId: string; readonly url: string; readonly epoch: number }>;
  close(): Promise<void>;
}

const NODE_ENV = { CHAT_ACK_FLUSH_MS: '10' };

async function startTarget(): Promise<Target> {
  if (testEngineIsCitus()) {
    const cluster = await TestCluster.start({ nodes: 3, nodeEnv: NODE_ENV });
    return {
      sql: cluster.sql,
      nodeOf: async (user) => {
        const { node, epoch } = await cluster.route(user);
        return { ...cluster.node(node), epoch };
      },
      close: () => cluster.close(),
    };
  }
  const single = await startSingleNode({ env: NODE_ENV });
  return {
    sql: single.sql,
    nodeOf: () => Promise.resolve({ ...single.node, epoch: 0 }),
    close: () => single.close(),
  };
}

let h: Target;
const open: RawClient[] = [];

beforeAll(async () => {
  h = await startTarget();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await h.close();
});

type Evt = ServerFrame & { t: 'evt' };

describe.each<[string, Codec]>([
  ['json', jsonCodec],
  ['msgpack', msgpackCodec],
])('protocol v1 over %s', (name, codec) => {
  const u = (id: string): string => `${name}-${id}`;
  const connect = async (user: string, device = 'd1'): Promise<RawClient> => {
    const c = await RawClient.ready({ url: (await h.nodeOf(user)).url, codec, user, device });
    open.push(c);
    return c;
  };
  const createChat = async (
    c: RawClient,
    members: string[],
    chatName?: string,
  ): Promise<string> => {
    const reply = await c.ok({ t: 'createChat', members, ...(chatName ? { name: chatName } : {}) });
    return reply.chatId as string;
  };

  it('welcomes a new user with seq 0 and the heartbeat interval', async () => {
    const c = await RawClient.connect({
      url: (await h.nodeOf(u('newbie'))).url,
      codec,
      user: u('newbie'),
      device: 'phone',
    });
    open.push(c);
    const welcome = await c.next((f) => f.t === 'welcome');
    expect(welcome).toEqual({
      t: 'welcome',
      user: u('newbie'),
      device: 'phone',
      node: (await h.nodeOf(u('newbie'))).nodeId,
      epoch: (await h.nodeOf(u('newbie'))).epoch,
      seq: 0,
      heartbeatMs: expect.any(Number),
      storeEpoch: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
  });

  it('delivers a 1:1 message to every device of both users, with contiguous seqs', async () => {
    const [a, b] = [u('a1'), u('b1')];
    const a1 = await connect(a, 'd1');
    const a2 = await connect(a, 'd2');
    const b1 = await connect(b, 'd1');
    const b2 = await connect(b, 'd2');
    const chatId = await createChat(a1, [b]);
    const sent = await a1.ok({ t: 'send', chatId, clientMsgId: 'm1', body: 'hello' });
    expect(sent).toEqual({
      t: 'ok',
      id: expect.any(Number),
      messageId: expect.any(String),
      ts: expect.any(Number),
    });

    for (const c of [a1, a2, b1, b2]) {
      const created = await c.next<Evt>((f) => f.t === 'evt' && f.kind === 'chat');
      expect(created).toEqual({
        t: 'evt',
        seq: 1,
        kind: 'chat',
        chatId,
        change: 'created',
        members: expect.arrayContaining([a, b]),
        by: a,
        ts: expect.any(Number),
      });
      const msg = await c.next<Evt>((f) => f.t === 'evt' && f.kind === 'message');
      expect(msg).toEqual({
        t: 'evt',
        seq: 2,
        kind: 'message',
        chatId,
        messageId: sent.messageId,
        from: a,
        body: 'hello',
        attachments: [],
        ts: sent.ts,
      });
    }
    const more = await a1.ok({ t: 'send', chatId, clientMsgId: 'm2', body: 'again' });
    expect(more.messageId).not.toBe(sent.messageId);
    await waitFor(() => expect(b2.events().map((e) => e.seq)).toEqual([1, 2, 3]));
  });

  it('keeps messages for an offline user, who syncs them in order and acks them away', async () => {
    const [a, b] = [u('a2'), u('b2')];
    const a1 = await connect(a);
    const chatId = await createChat(a1, [b]);
    for (let i = 0; i < 50; i++)
      await a1.ok({ t: 'send', chatId, clientMsgId: `off-${i}`, body: `n${i}` });
    // The `ok` means stored; the events reach b's inbox right after (the fan-out).
    await waitFor(async () =>
      expect(
        await countRows(h.sql, 'SELECT count(*) AS n FROM inbox WHERE user_id = $1', [b]),
      ).toBe(51),
    );

    const b1 = await connect(b);
    const welcome = b1.frames.find((f) => f.t === 'welcome') as ServerFrame & { t: 'welcome' };
    expect(welcome.seq).toBe(51);
    const reply = await b1.ok({ t: 'sync', after: 0, limit: 500 });
    expect(reply).toMatchObject({ seq: 51, more: false });
    const events = b1.events();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    expect(events.slice(1).map((e) => (e.kind === 'message' ? e.body : null))).toEqual(
      Array.from({ length: 50 }, (_, i) => `n${i}`),
    );

    expect(await countRows(h.sql, 'SELECT count(*) AS n FROM inbox WHERE user_id = $1', [b])).toBe(
      51,
    );
    b1.sendFrame({ t: 'ack', seq: 51 });
    await waitFor(async () =>
      expect(
        await countRows(h.sql, 'SELECT count(*) AS n FROM inbox WHERE user_id = $1', [b]),
      ).toBe(0),
    );
  });

  it('pages a sync with `more`', async () => {
    const [a, b] = [u('a3'), u('b3')];
    const a1 = await connect(a);
    const chatId = await createChat(a1, [b]);
    for (let i = 0; i < 5; i++)
      await a1.ok({ t: 'send', chatId, clientMsgId: `p-${i}`, body: 'x' });
    // An ack means the message is stored; its fan-out to b's inbox follows (the user step).
    await waitFor(async () =>
      expect(
        await countRows(h.sql, 'SELECT count(*) AS n FROM inbox WHERE user_id = $1', [b]),
      ).toBe(6),
    );
    const b1 = await connect(b);
    expect(await b1.ok({ t: 'sync', after: 0, limit: 4 })).toMatchObject({ seq: 6, more: true });
    expect(await b1.ok({ t: 'sync', after: 4, limit: 4 })).toMatchObject({ seq: 6, more: false });
    expect(b1.events().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('delivers to every member of a 100-member group, refuses a 101st and a non-member', async () => {
    const members = Array.from({ length: 100 }, (_, i) => u(`g${i}`));
    const clients = await Promise.all(members.map((m) => connect(m)));
    const chatId = await createChat(clients[0]!, members.slice(1), 'big');
    const sent = await clients[0]!.ok({ t: 'send', chatId, clientMsgId: 'g-1', body: 'to all' });
    // Protocol v1 (no features): everyone, the sending device included, gets the event.
    await Promise.all(
      clients.map((c) =>
        c.next((f) => f.t === 'evt' && f.kind === 'message' && f.messageId === sent.messageId),
      ),
    );

    const limit = await clients[0]!.request({ t: 'addMembers', chatId, members: [u('g100')] });
    expect(limit).toMatchObject({ t: 'err', code: 'LIMIT' });
    expect(
      await countRows(h.sql, 'SELECT count(*) AS n FROM chat_members WHERE chat_id = $1', [chatId]),
    ).toBe(100);

    const outsider = await connect(u('outsider'));
    const before = await countRows(h.sql, 'SELECT count(*) AS n FROM messages');
    const refused = await outsider.request({
      t: 'send',
      chatId,
      clientMsgId: 'x',
      body: 'let me in',
    });
    expect(refused).toMatchObject({ t: 'err', code: 'NOT_MEMBER' });
    expect(await countRows(h.sql, 'SELECT count(*) AS n FROM messages')).toBe(before);
    expect(
      await countRows(h.sql, 'SELECT count(*) AS n FROM inbox WHERE user_id = $1', [u('outsider')]),
    ).toBe(0);
  });

  it('answers a repeated clientMsgId with the same messageId, also across a reconnect', async () => {
    const [a, b] = [u('a4'), u('b4')];
    let a1 = await connect(a);
    const chatId = await createChat(a1, [b]);
    const first = await a1.ok({ t: 'send', chatId, clientMsgId: 'same', body: 'once' });
    const second = await a1.ok({ t: 'send', chatId, clientMsgId: 'same', body: 'once' });
    expect(second).toMatchObject({ messageId: first.messageId, ts: first.ts, dup: true });
    await a1.close();
    a1 = await connect(a);
    const third = await a1.ok({ t: 'send', chatId, clientMsgId: 'same', body: 'once' });
    expect(third).toMatchObject({ messageId: first.messageId, dup: true });
    expect(
      await countRows(
        h.sql,
        "SELECT count(*) AS n FROM messages WHERE sender_id = $1 AND kind = 'message'",
        [a],
      ),
    ).toBe(1);
    await waitFor(async () =>
      expect(
        await countRows(
          h.sql,
          "SELECT count(*) AS n FROM inbox WHERE user_id = $1 AND kind = 'message'",
          [b],
        ),
      ).toBe(1),
    );
    // Protocol v1 (no `no-echo`): the sender's inbox has it too, once.
    await waitFor(async () =>
      expect(
        await countRows(
          h.sql,
          "SELECT count(*) AS n FROM inbox WHERE user_id = $1 AND kind = 'message'",
          [a],
        ),
      ).toBe(1),
    );
  });

  it('lists the chats of a user', async () => {
    const [a, b, c] = [u('a5'), u('b5'), u('c5')];
    const a1 = await connect(a);
    const one = await createChat(a1, [b], 'one');
    const two = await createChat(a1, [b, c], 'two');
    const b1 = await connect(b);
    const reply = await b1.ok({ t: 'listChats' });
    const chats = (reply.chats as Array<{ chatId: string; name: string; members: string[] }>).map(
      (x) => ({ chatId: x.chatId, name: x.name, members: [...x.members].sort() }),
    );
    // The creator is the admin; no message yet.
    expect(reply.chats).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ chatId: two, admins: [a], lastMessageAt: null }),
        expect.objectContaining({ chatId: one, admins: [a], lastMessageAt: null }),
      ]),
    );
    expect(reply.more).toBe(false);
    expect(chats).toEqual(
      expect.arrayContaining([
        { chatId: one, name: 'one', members: [a, b].sort() },
        { chatId: two, name: 'two', members: [a, b, c].sort() },
      ]),
    );
    expect(chats).toHaveLength(2);
  });

  it('adds and removes members with chat events; a removed member can no longer send', async () => {
    const [a, b, c] = [u('a6'), u('b6'), u('c6')];
    const a1 = await connect(a);
    const c1 = await connect(c);
    const chatId = await createChat(a1, [b]);
    await a1.ok({ t: 'addMembers', chatId, members: [c] });
    await c1.next((f) => f.t === 'evt' && f.kind === 'chat' && f.change === 'membersAdded');
    await a1.ok({ t: 'removeMembers', chatId, members: [c] });
    const removed = await c1.next<Evt>(
      (f) => f.t === 'evt' && f.kind === 'chat' && f.change === 'membersRemoved',
    );
    expect(removed).toMatchObject({ chatId, members: [c], by: a });
    expect(await c1.request({ t: 'send', chatId, clientMsgId: 'late', body: 'hi' })).toMatchObject({
      t: 'err',
      code: 'NOT_MEMBER',
    });
    expect(
      await a1.request({ t: 'addMembers', chatId: 'no-such-chat', members: [c] }),
    ).toMatchObject({ t: 'err', code: 'NOT_FOUND' });
  });

  it('refuses a fourth device with LIMIT and 4009, and replaces a reconnecting device with 4008', async () => {
    const user = u('many');
    const first = await connect(user, 'd1');
    await connect(user, 'd2');
    await connect(user, 'd3');
    const fourth = await RawClient.connect({
      url: (await h.nodeOf(user)).url,
      codec,
      user,
      device: 'd4',
    });
    open.push(fourth);
    expect(await fourth.next((f) => f.t === 'err')).toMatchObject({ code: 'LIMIT' });
    expect((await fourth.closed).code).toBe(4009);

    const again = await connect(user, 'd1');
    expect((await first.closed).code).toBe(4008);
    expect(await again.ok({ t: 'listChats' })).toMatchObject({ chats: [] });
  });
});
