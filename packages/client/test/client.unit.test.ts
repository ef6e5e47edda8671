/**
 * The client against a fake protocol server on a loopback port, over both codecs. These are
 * socket tests, not a mock of the node: the real node is exercised by integration tests.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { ChatError, CloseCode } from '@chat/protocol';
import type { EventFrame } from '@chat/protocol';
import { ChatClient, ConnectionError } from '../src';
import type { ChatClientOptions, ConnectionState } from '../src';
import { FakeNode, waitFor } from './fake-node';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function startNode(id = 'node-1'): Promise<FakeNode> {
  const node = await FakeNode.start(id);
  cleanups.push(() => node.stop());
  return node;
}

describe.each(['json', 'msgpack'] as const)('ChatClient over %s', (codec) => {
  function makeClient(opts: Partial<ChatClientOptions> & Pick<ChatClientOptions, 'url'>) {
    const client = new ChatClient({
      token: 'alice-token',
      codec,
      WebSocket,
      backoffBaseMs: 10,
      backoffMaxMs: 50,
      ...opts,
    } as ChatClientOptions);
    const events: EventFrame[] = [];
    const states: ConnectionState[] = [];
    const errors: Error[] = [];
    client.on('event', (e) => events.push(e));
    client.on('state', (s) => states.push(s));
    client.on('error', (e) => errors.push(e));
    cleanups.push(() => client.close());
    return { client, events, states, errors };
  }

  it('connects, syncs page by page from lastSeq, delivers in order and acks', async () => {
    const node = await startNode();
    for (let i = 1; i <= 7; i++) node.addEvent(`m${i}`);
    const { client, events, states } = makeClient({ url: node.url, lastSeq: 2, syncLimit: 2 });
    await client.connect();
    expect(node.connections[0]?.protocol).toBe(`chat.v1.${codec}`);
    expect(events.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7]);
    expect(node.receivedOf('sync').map((f) => f.after)).toEqual([2, 4, 6]);
    await waitFor(() => expect(node.receivedOf('ack').map((f) => f.seq)).toEqual([4, 6, 7]));
    expect(client.lastSeq).toBe(7);
    expect(states.map((s) => s.status)).toEqual(['connecting', 'syncing', 'ready']);
    expect(client.state).toEqual({ status: 'ready', node: 'node-1' });
  });

  it('on a reset welcome, tells the app and carries on from the oldest events left', async () => {
    const node = await startNode();
    for (let i = 1; i <= 6; i++) node.addEvent(`m${i}`);
    // Retention deleted everything up to 4 while the device was away.
    node.inbox.splice(0, 4);
    node.resetDevice = true;
    const { client, events } = makeClient({ url: node.url, lastSeq: 2 });
    const resets: { lastSeq: number }[] = [];
    client.on('reset', (r) => resets.push(r));
    await client.connect();
    expect(resets).toEqual([{ lastSeq: 2 }]);
    expect(events.map((e) => e.seq)).toEqual([5, 6]);
    await waitFor(() => expect(node.receivedOf('ack').at(-1)?.seq).toBe(6));
    expect(client.lastSeq).toBe(6);
  });

  it('on a new store epoch, starts over from seq 0: reused seqs arrive, repeats do not', async () => {
    const node = await startNode();
    node.storeEpoch = 'e1';
    for (let i = 1; i <= 5; i++) node.addEvent(`before ${i}`);
    const { client, events } = makeClient({ url: node.url });
    const changes: unknown[] = [];
    client.on('storeEpochChanged', (c) => changes.push(c));
    await client.connect();
    expect(client.storeEpoch).toBe('e1');
    expect(client.lastSeq).toBe(5);

    // The database goes back to when the inbox held 3 events; the next two events take seqs 4
    // and 5 again, and the node closes its connections with 4010.
    node.inbox.splice(3);
    node.storeEpoch = 'e2';
    node.messageIdPrefix = 'r';
    node.addEvent('after 1', false);
    node.addEvent('after 2', false);
    node.connections[0]!.close(CloseCode.STORE_EPOCH, 'store epoch changed');

    await waitFor(() =>
      expect(events.map((e) => (e.kind === 'message' ? e.body : e.kind))).toEqual([
        'before 1',
        'before 2',
        'before 3',
        'before 4',
        'before 5',
        'after 1',
        'after 2',
      ]),
    );
    expect(changes).toEqual([{ previous: 'e1', epoch: 'e2', lastSeq: 5 }]);
    expect(node.connections[1]!.received.filter((f) => f.t === 'sync')[0]?.after).toBe(0);
    expect(client.storeEpoch).toBe('e2');
    expect(client.lastSeq).toBe(5);
    await waitFor(() =>
      expect(node.connections[1]!.received.filter((f) => f.t === 'ack').at(-1)?.seq).toBe(5),
    );
  });

  it("resyncs from 0 when the persisted store epoch is not the node's, and not without one", async () => {
    const node = await startNode();
    node.storeEpoch = 'e2';
    for (let i = 1; i <= 4; i++) node.addEvent(`m${i}`);
    const stale = makeClient({ url: node.url, lastSeq: 3, storeEpoch: 'e1' });
    const changes: unknown[] = [];
    stale.client.on('storeEpochChanged', (c) => changes.push(c));
    await stale.client.connect();
    expect(changes).toEqual([{ previous: 'e1', epoch: 'e2', lastSeq: 3 }]);
    expect(stale.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);

    // An app that never stored an epoch keeps its lastSeq: the first epoch is taken as given.
    const legacy = makeClient({ url: node.url, lastSeq: 3 });
    legacy.client.on('storeEpochChanged', (c) => changes.push(c));
    await legacy.client.connect();
    expect(legacy.events.map((e) => e.seq)).toEqual([4]);
    expect(legacy.client.storeEpoch).toBe('e2');
    expect(changes).toHaveLength(1);
  });

  it('answers pings, and syncs when a ping or a push reveals a gap', async () => {
    const node = await startNode();
    const { client, events } = makeClient({ url: node.url });
    await client.connect();
    const conn = node.connections[0]!;
    conn.send({ t: 'ping', seq: 0 });
    await waitFor(() => expect(node.receivedOf('pong')).toEqual([{ t: 'pong', seq: 0 }]));

    node.addEvent('missed', false); // seq 1, never pushed
    conn.send({ t: 'ping', seq: 1 });
    await waitFor(() => expect(events.map((e) => e.seq)).toEqual([1]));

    node.addEvent('lost push', false); // seq 2
    node.addEvent('pushed'); // seq 3 arrives first: held until 2 is synced
    await waitFor(() => expect(events.map((e) => e.seq)).toEqual([1, 2, 3]));
    await waitFor(() => expect(node.receivedOf('ack').at(-1)?.seq).toBe(3));
    expect(node.receivedOf('sync').length).toBeGreaterThanOrEqual(3);
  });

  it('dedupes pushes it already has', async () => {
    const node = await startNode();
    const { client, events } = makeClient({ url: node.url });
    await client.connect();
    const evt = node.addEvent('once');
    node.connections[0]!.send(evt);
    node.addEvent('twice');
    await waitFor(() => expect(events.map((e) => e.seq)).toEqual([1, 2]));
  });

  it('matches replies to requests and rejects err replies with ChatError', async () => {
    const node = await startNode();
    const { client } = makeClient({ url: node.url });
    await client.connect();
    await expect(client.createChat(['bob'], 'pals')).resolves.toEqual({ chatId: 'chat-9' });
    await expect(client.listChats()).resolves.toEqual([
      { chatId: 'chat-1', name: null, members: ['alice'] },
    ]);
    const err = await client.read('chat-1', 'm1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatError);
    expect((err as ChatError).code).toBe('NOT_MEMBER');
    const created = node.receivedOf('createChat')[0]!;
    expect(created).toMatchObject({ members: ['bob'], name: 'pals' });
    expect(typeof created.id).toBe('number');
  });

  it('resends an unacknowledged send with the same clientMsgId after the server drops it', async () => {
    const node = await startNode();
    let dropped = false;
    node.hooks.onFrame = (conn, frame) => {
      if (frame.t === 'send' && !dropped) {
        dropped = true;
        conn.close(1001, 'going away'); // as if the node died before answering
        return true;
      }
      return false;
    };
    const { client, events, states } = makeClient({ url: node.url });
    await client.connect();
    const result = await client.send('chat-1', 'hello');
    const sends = node.receivedOf('send');
    expect(sends).toHaveLength(2);
    expect(sends[1]!.clientMsgId).toBe(sends[0]!.clientMsgId);
    expect(sends[1]!.id).not.toBe(sends[0]!.id);
    expect(result).toEqual({ messageId: 'msg-1', ts: 1_000_001 });
    expect(node.connections).toHaveLength(2);
    expect(states.map((s) => s.status)).toContain('reconnecting');
    await waitFor(() =>
      expect(events.map((e) => (e.kind === 'message' ? e.body : null))).toEqual(['hello']),
    );
  });

  it('sends while disconnected wait for the connection; a repeat gets dup', async () => {
    const node = await startNode();
    const { client } = makeClient({ url: node.url });
    const pending = client.send('chat-1', 'early', { clientMsgId: 'fixed-1' });
    await client.connect();
    await expect(pending).resolves.toEqual({ messageId: 'msg-1', ts: 1_000_001 });
    await expect(client.send('chat-1', 'early', { clientMsgId: 'fixed-1' })).resolves.toEqual({
      messageId: 'msg-1',
      ts: 1_000_001,
      dup: true,
    });
  });

  it('retries a send on UNAVAILABLE, rejects at once on NOT_MEMBER, relays typing', async () => {
    const node = await startNode();
    let unavailable = 2;
    node.hooks.onFrame = (conn, frame) => {
      if (frame.t === 'send' && frame.chatId === 'down' && unavailable > 0) {
        unavailable -= 1;
        conn.send({ t: 'err', id: frame.id, code: 'UNAVAILABLE', message: 'db down' });
        return true;
      }
      if (frame.t === 'send' && frame.chatId === 'secret') {
        conn.send({ t: 'err', id: frame.id, code: 'NOT_MEMBER', message: 'not a member' });
        return true;
      }
      return false;
    };
    const { client } = makeClient({ url: node.url });
    const typing: string[] = [];
    client.on('typing', (n) => typing.push(`${n.user}@${n.chatId}`));
    await client.connect();
    await expect(client.send('down', 'retry me')).resolves.toMatchObject({ messageId: 'msg-1' });
    const attempts = node.receivedOf('send').filter((f) => f.chatId === 'down');
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((f) => f.clientMsgId)).size).toBe(1);
    await expect(client.send('secret', 'no')).rejects.toMatchObject({ code: 'NOT_MEMBER' });
    expect(node.receivedOf('send').filter((f) => f.chatId === 'secret')).toHaveLength(1);

    client.typing('chat-1');
    node.connections[0]!.send({ t: 'typing', chatId: 'chat-1', user: 'bob' });
    await waitFor(() =>
      expect(node.receivedOf('typing')).toEqual([{ t: 'typing', chatId: 'chat-1' }]),
    );
    await waitFor(() => expect(typing).toEqual(['bob@chat-1']));
  });

  it('follows moved to another node at once, without backoff', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    a.hooks.onOpen = (conn) => {
      conn.send({ t: 'moved', node: 'node-b', url: b.url, epoch: 2 });
      conn.close(CloseCode.MOVED, 'moved');
    };
    // With this backoff a non-immediate reconnect would outlast the test timeout.
    const { client, states } = makeClient({
      url: a.url,
      backoffBaseMs: 60_000,
      backoffMaxMs: 60_000,
      random: () => 0.99,
    });
    const moved: string[] = [];
    client.on('moved', (m) => moved.push(m.node));
    await client.connect();
    expect(moved).toEqual(['node-b']);
    expect(client.state).toEqual({ status: 'ready', node: 'node-b' });
    expect(b.connections).toHaveLength(1);
    expect(states.at(-1)).toEqual({ status: 'ready', node: 'node-b' });
  });

  it('moves with overlap: the old connection delivers and finishes its requests until the new one is synced', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const { client, events, states } = makeClient({ url: a.url, movedJitterMs: 1 });
    await client.connect();
    // The new node's first sync and the old node's createChat reply wait for the test.
    let heldSync: (() => void) | undefined;
    b.hooks.onFrame = (conn, f) => {
      if (f.t !== 'sync' || heldSync !== undefined) return false;
      heldSync = () => {
        b.hooks.onFrame = undefined;
        conn.send({ t: 'ok', id: f.id, seq: b.latestSeq, more: false });
      };
      return true;
    };
    let replyCreate: (() => void) | undefined;
    a.hooks.onFrame = (conn, f) => {
      if (f.t !== 'createChat') return false;
      replyCreate = () => conn.send({ t: 'ok', id: f.id, chatId: 'chat-9' });
      return true;
    };
    const created = client.createChat(['bob']);
    await waitFor(() => expect(replyCreate).toBeDefined());

    // An event stored as the device moves: the new node's welcome counts it (so the client
    // syncs there), the old connection pushes it.
    b.addEvent('during the move', false);
    a.connections[0]!.send({ t: 'moved', node: 'node-b', url: b.url, epoch: 2, closeInMs: 5000 });
    await waitFor(() => expect(heldSync).toBeDefined());
    expect(client.state).toEqual({ status: 'ready', node: 'node-a', movingTo: 'node-b' });
    // Still delivered through the old connection; the new node has the same inbox.
    a.addEvent('during the move');
    await waitFor(() => expect(events.map((e) => e.seq)).toEqual([1]));
    expect(a.connections[0]!.closed).toBe(false);

    heldSync!();
    await waitFor(() => expect(client.state).toEqual({ status: 'ready', node: 'node-b' }));
    // New requests go to the new node; the old one still owes its reply.
    await expect(client.listChats()).resolves.toHaveLength(1);
    expect(b.receivedOf('listChats')).toHaveLength(1);
    expect(a.connections[0]!.closed).toBe(false);
    replyCreate!();
    await expect(created).resolves.toEqual({ chatId: 'chat-9' });
    await waitFor(() => expect(a.connections[0]!.closed).toBe(true));
    expect(events.map((e) => e.seq)).toEqual([1]);
    expect(states.map((s) => s.status)).not.toContain('reconnecting');
    expect(states.slice(-2)).toEqual([
      { status: 'ready', node: 'node-a', movingTo: 'node-b' },
      { status: 'ready', node: 'node-b' },
    ]);
  });

  it('moves with overlap without a sync when the old connection delivered everything already', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const { client, events } = makeClient({ url: a.url, movedJitterMs: 1 });
    await client.connect();
    a.addEvent('before the move');
    b.addEvent('before the move', false);
    await waitFor(() => expect(events.map((e) => e.seq)).toEqual([1]));
    a.connections[0]!.send({ t: 'moved', node: 'node-b', url: b.url, epoch: 2, closeInMs: 5000 });
    await waitFor(() => expect(client.state).toEqual({ status: 'ready', node: 'node-b' }));
    await waitFor(() => expect(a.connections[0]!.closed).toBe(true));
    expect(b.receivedOf('sync')).toEqual([]);
    // What comes next arrives on the new connection.
    b.addEvent('after the move');
    await waitFor(() => expect(events.map((e) => e.seq)).toEqual([1, 2]));
  });

  it('after the old node closes an overlapping connection, the new one carries on', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    b.hooks.refuse = () => ({ status: 503, headers: { 'retry-after': '60' } });
    const { client } = makeClient({ url: a.url, movedJitterMs: 1 });
    await client.connect();
    a.connections[0]!.send({ t: 'moved', node: 'node-b', url: b.url, epoch: 2, closeInMs: 50 });
    await waitFor(() => expect(b.upgrades.length).toBeGreaterThan(0));
    expect(client.state).toEqual({ status: 'ready', node: 'node-a', movingTo: 'node-b' });
    a.connections[0]!.close(CloseCode.MOVED, 'moved');
    await waitFor(() => expect(client.state.status).toBe('reconnecting'));
    expect(client.state.movingTo).toBeUndefined();
  });

  it('stops on close 4009 (device limit) without reconnecting', async () => {
    const node = await startNode();
    node.hooks.onOpen = (conn) => {
      conn.send({ t: 'err', code: 'LIMIT', message: 'at most 3 devices' });
      conn.close(CloseCode.DEVICE_LIMIT, 'device limit');
    };
    const { client, errors } = makeClient({ url: node.url });
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatError);
    expect((err as ChatError).code).toBe('LIMIT');
    expect((err as ChatError).message).toBe('at most 3 devices');
    expect(errors).toEqual([err]);
    expect(client.state.status).toBe('closed');
    expect(node.upgrades).toHaveLength(1);
    await expect(client.send('chat-1', 'x')).rejects.toBeInstanceOf(ConnectionError);
  });

  it('stops on close 4008 (replaced) and does not fight the newer connection', async () => {
    const node = await startNode();
    const { client, errors } = makeClient({ url: node.url });
    await client.connect();
    node.connections[0]!.close(CloseCode.REPLACED, 'replaced');
    await waitFor(() => expect(client.state.status).toBe('closed'));
    expect(errors[0]).toBeInstanceOf(ConnectionError);
    expect((errors[0] as ConnectionError).closeCode).toBe(4008);
    expect(node.upgrades).toHaveLength(1);
  });

  it('fetches a fresh token after a 401 when the token is a function', async () => {
    const node = await startNode();
    node.hooks.refuse = (token) => (token === 'stale' ? { status: 401 } : undefined);
    const tokens = ['stale', 'fresh'];
    const { client, errors } = makeClient({
      url: node.url,
      token: () => Promise.resolve(tokens.shift() ?? 'fresh'),
    });
    await client.connect();
    expect(node.upgrades.map((u) => u.token)).toEqual(['stale', 'fresh']);
    expect(errors).toHaveLength(1);
    expect((errors[0] as ChatError).code).toBe('UNAUTHORIZED');
  });

  it('stops after a 401 when the token is a fixed string, and after close 4003 too', async () => {
    const node = await startNode();
    node.hooks.refuse = () => ({ status: 401 });
    const { client } = makeClient({ url: node.url, token: 'bad' });
    const err = await client.connect().catch((e: unknown) => e);
    expect((err as ChatError).code).toBe('UNAUTHORIZED');
    expect(node.upgrades).toHaveLength(1);

    const other = await startNode('node-2');
    other.hooks.onOpen = (conn) => conn.close(CloseCode.UNAUTHORIZED, 'token expired');
    const second = makeClient({ url: other.url, token: 'expiring' });
    const err2 = await second.client.connect().catch((e: unknown) => e);
    expect((err2 as ChatError).code).toBe('UNAUTHORIZED');
    expect(other.upgrades).toHaveLength(1);
  });

  it('after close 4003 of a welcomed session, reconnects with a fresh token and no error', async () => {
    const node = await startNode();
    const tokens = ['first', 'second'];
    const { client, errors } = makeClient({
      url: node.url,
      token: () => tokens.shift() ?? 'later',
    });
    await client.connect();
    node.connections[0]!.close(CloseCode.UNAUTHORIZED, 'token expired');
    await waitFor(() => expect(node.upgrades.map((u) => u.token)).toEqual(['first', 'second']));
    await waitFor(() => expect(client.state.status).toBe('ready'));
    expect(errors).toHaveLength(0);
  });

  it('waits at least Retry-After after a 503 refusal', async () => {
    const node = await startNode();
    node.hooks.refuse = (_token, index) =>
      index === 0 ? { status: 503, headers: { 'Retry-After': '1' } } : undefined;
    const { client } = makeClient({ url: node.url });
    await client.connect();
    expect(node.upgrades).toHaveLength(2);
    expect(node.upgrades[1]!.at - node.upgrades[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('finds its node through the registry and asks again after losing it', async () => {
    const node = await startNode();
    const asked: string[] = [];
    const registry = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ user: 'alice', node: 'node-1', url: node.url, epoch: 1 }));
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => registry.close(() => resolve())));
    const port = (registry.address() as AddressInfo).port;
    const client = new ChatClient({
      registryUrl: `http://127.0.0.1:${port}/`,
      user: 'alice',
      token: 't',
      codec,
      backoffBaseMs: 10,
      // no WebSocket option: Node 20 has no global one, so the default falls back to `ws`
    });
    cleanups.push(() => client.close());
    await client.connect();
    expect(asked).toEqual(['/v1/route?user=alice']);
    node.connections[0]!.close(1001, 'shutting down');
    await waitFor(() => expect(node.connections).toHaveLength(2));
    expect(asked).toHaveLength(2);
  });

  it('close() is clean: no reconnect, pending requests reject', async () => {
    const node = await startNode();
    node.hooks.onFrame = (_conn, frame) => frame.t === 'listChats'; // never answered
    const { client, states } = makeClient({ url: node.url });
    await client.connect();
    const pending = client.listChats();
    await waitFor(() => expect(node.receivedOf('listChats')).toHaveLength(1));
    const rejected = expect(pending).rejects.toBeInstanceOf(ConnectionError);
    await client.close();
    await rejected;
    expect(states.at(-1)?.status).toBe('closed');
    await waitFor(() => expect(node.connections[0]!.closed).toBe(true));
    expect(node.upgrades).toHaveLength(1);
  });
});
