/** RpcServer and PeerClient over loopback sockets in this process. */
import type { Socket } from 'node:net';
import { ChatError } from '@chat/protocol';
import { DeliveryBatcher, PeerPool, createPackr, defineMethod, encodeFrame } from '../src';
import type { PeerInfo } from '../src';
import {
  SECRET,
  captureLogger,
  rawSocket,
  startClient,
  startServer,
  useCleanup,
  waitFor,
} from './helpers';

interface EchoReq {
  readonly text: string;
  readonly delayMs?: number;
}
const Echo = defineMethod<EchoReq, { text: string; from: string }>('echo');
const Fail = defineMethod<{ kind: 'chat' | 'plain' }, never>('fail');
const Hang = defineMethod<Record<string, never>, never>('hang');

/** The shape of a delivery forwarded between nodes (store's Delivery, trimmed). */
interface Delivery {
  readonly userId: string;
  readonly event: { readonly seq: number };
}
const Deliver = defineMethod<{ deliveries: Delivery[] }, { failed: number[] }>('deliver');

const cleanup = useCleanup();

async function echoServer(port = 0, logger = captureLogger(), authTimeoutMs = 5000) {
  const server = await startServer(cleanup, { logger, authTimeoutMs }, port);
  const seen: PeerInfo[] = [];
  server.handle(Echo, async (req, peer) => {
    seen.push(peer);
    if (req.delayMs !== undefined) await new Promise((r) => setTimeout(r, req.delayMs));
    return { text: req.text, from: peer.nodeId };
  });
  server.handle(Fail, (req) => {
    throw req.kind === 'chat'
      ? new ChatError('NOT_MEMBER', 'not a member')
      : new Error('db password leaked');
  });
  server.handle(Hang, () => new Promise<never>(() => undefined));
  return { server, seen, logger };
}

it('round-trips typed calls and tells the handler who called', async () => {
  const { server, seen } = await echoServer();
  const client = startClient(cleanup, server.port, { nodeId: 'node-7' });
  await expect(client.call(Echo, { text: 'hi' })).resolves.toEqual({ text: 'hi', from: 'node-7' });
  expect(seen[0]?.nodeId).toBe('node-7');
  expect(client.stats()).toMatchObject({
    connected: true,
    inflight: 0,
    queued: 0,
    errors: 0,
    connects: 1,
  });
});

it('multiplexes concurrent calls on one connection, answered out of order', async () => {
  const { server } = await echoServer();
  const client = startClient(cleanup, server.port);
  const order: string[] = [];
  const calls = [60, 30, 0, 45, 15].map((delayMs) =>
    client.call(Echo, { text: `d${delayMs}`, delayMs }).then((res) => {
      order.push(res.text);
      return res.text;
    }),
  );
  expect(await Promise.all(calls)).toEqual(['d60', 'd30', 'd0', 'd45', 'd15']);
  expect(order).toEqual(['d0', 'd15', 'd30', 'd45', 'd60']);
  expect(server.connectionCount).toBe(1);
});

it("maps handler errors to ChatError codes, hiding a foreign error's message", async () => {
  const { server, logger } = await echoServer();
  const client = startClient(cleanup, server.port);
  await expect(client.call(Fail, { kind: 'chat' })).rejects.toMatchObject({
    name: 'ChatError',
    code: 'NOT_MEMBER',
    message: 'not a member',
  });
  const err = await client.call(Fail, { kind: 'plain' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ChatError);
  expect(err).toMatchObject({ code: 'INTERNAL', message: 'internal error' });
  expect(logger.lines.some((l) => l.level === 'error' && l.msg === 'rpc handler failed')).toBe(
    true,
  );
  const Unknown = defineMethod<null, null>('nope');
  await expect(client.call(Unknown, null)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  expect(client.stats().errors).toBe(3);
});

it('rejects with UNAVAILABLE on timeout, and the connection stays usable', async () => {
  const { server } = await echoServer();
  const client = startClient(cleanup, server.port);
  await expect(client.call(Hang, {}, { timeoutMs: 50 })).rejects.toMatchObject({
    code: 'UNAVAILABLE',
  });
  await expect(client.call(Echo, { text: 'after' })).resolves.toMatchObject({ text: 'after' });
  expect(client.stats().inflight).toBe(0);
});

it('refuses a client with the wrong secret: socket closed, handler never called', async () => {
  const { server, seen, logger } = await echoServer();
  const client = startClient(cleanup, server.port, { secret: 'wrong', connectTimeoutMs: 1000 });
  await expect(client.call(Echo, { text: 'x' }, { timeoutMs: 300 })).rejects.toMatchObject({
    code: 'UNAVAILABLE',
  });
  await waitFor(() =>
    expect(logger.lines.some((l) => String(l.obj.reason).startsWith('wrong cluster secret'))).toBe(
      true,
    ),
  );
  expect(seen).toEqual([]);
  expect(client.stats().connected).toBe(false);
});

it('closes a connection that sends a request before authenticating, or nothing', async () => {
  const { server, seen } = await startServer(cleanup, { authTimeoutMs: 100 }).then(async (s) => {
    const log: PeerInfo[] = [];
    s.handle(Echo, (req, peer) => {
      log.push(peer);
      return { text: req.text, from: peer.nodeId };
    });
    return { server: s, seen: log };
  });
  const early = await rawSocket(cleanup, server.port);
  early.socket.write(
    encodeFrame(createPackr(), { t: 'req', id: 1, m: 'echo', p: { text: 'x' } }, 1024),
  );
  await early.closed;
  const silent = await rawSocket(cleanup, server.port);
  await silent.closed; // the auth timeout
  expect(seen).toEqual([]);
});

describe('malformed frames close that connection only', () => {
  const header = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const cases: [string, Buffer][] = [
    ['garbage bytes', Buffer.from([0, 0, 0, 3, 0xc1, 0xff, 0xc1])],
    ['a huge length prefix', header(0x7fffffff)],
    ['an empty frame', header(0)],
    // Closed by the authentication timeout: the server never waits forever for the rest.
    ['a truncated frame', Buffer.concat([header(1000), Buffer.alloc(10)])],
    ['a frame over the pre-auth limit', Buffer.concat([header(2000), Buffer.alloc(2000)])],
  ];
  it.each(cases)('%s', async (_name, bytes) => {
    const { server, logger } = await echoServer(0, captureLogger(), 200);
    const good = startClient(cleanup, server.port);
    await expect(good.call(Echo, { text: 'before' })).resolves.toMatchObject({ text: 'before' });
    const bad = await rawSocket(cleanup, server.port);
    bad.socket.write(bytes);
    await bad.closed;
    expect(logger.lines.some((l) => l.msg === 'closing rpc connection')).toBe(true);
    await expect(good.call(Echo, { text: 'after' })).resolves.toMatchObject({ text: 'after' });
  });

  it('closes an authenticated connection that sends garbage', async () => {
    const { server } = await echoServer();
    const victim = startClient(cleanup, server.port);
    const other = startClient(cleanup, server.port);
    await victim.call(Echo, { text: 'x' });
    await other.call(Echo, { text: 'x' });
    // Reach into the victim's socket to write bytes the client would never produce.
    const socket = (victim as unknown as { socket: Socket }).socket;
    // A one-byte frame and a 4-byte trailer (the connection is checksummed): 0xc1 is no msgpack.
    socket.write(Buffer.from([0, 0, 0, 1, 0xc1, 0, 0, 0, 0]));
    await waitFor(() => expect(victim.stats().connects).toBe(2));
    await expect(other.call(Echo, { text: 'still' })).resolves.toMatchObject({ text: 'still' });
    await expect(victim.call(Echo, { text: 'again' })).resolves.toMatchObject({ text: 'again' });
  });
});

it('reconnects after the server restarts on the same port', async () => {
  const first = await echoServer();
  const port = first.server.port;
  const client = startClient(cleanup, port);
  await expect(client.call(Echo, { text: 'one' })).resolves.toMatchObject({ text: 'one' });
  const hanging = client.call(Hang, {}, { timeoutMs: 5000 });
  await first.server.close();
  await expect(hanging).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  await waitFor(() => expect(client.stats().connected).toBe(false));
  await echoServer(port);
  await expect(client.call(Echo, { text: 'two' }, { timeoutMs: 3000 })).resolves.toMatchObject({
    text: 'two',
  });
  expect(client.stats().connects).toBe(2);
});

it('queues calls while the peer is down, bounded by maxQueued', async () => {
  const { server } = await echoServer();
  const port = server.port;
  await server.close();
  const client = startClient(cleanup, port, { maxQueued: 3 });
  const queued = [1, 2, 3].map((i) => client.call(Echo, { text: `q${i}` }, { timeoutMs: 3000 }));
  await expect(client.call(Echo, { text: 'q4' })).rejects.toMatchObject({
    code: 'UNAVAILABLE',
    message: 'rpc queue full',
  });
  expect(client.stats().queued).toBe(3);
  await echoServer(port);
  expect((await Promise.all(queued)).map((r) => r.text)).toEqual(['q1', 'q2', 'q3']);
  expect(client.stats().queued).toBe(0);
});

it('frees the queue slot of a queued call that timed out', async () => {
  const { server } = await echoServer();
  const port = server.port;
  await server.close();
  const client = startClient(cleanup, port, { maxQueued: 1 });
  await expect(client.call(Echo, { text: 'a' }, { timeoutMs: 20 })).rejects.toMatchObject({
    code: 'UNAVAILABLE',
  });
  expect(client.stats().queued).toBe(0);
  const b = client.call(Echo, { text: 'b' }, { timeoutMs: 20 });
  await expect(b).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'rpc call timed out' });
});

it('fails calls at once after close', async () => {
  const { server } = await echoServer();
  const client = startClient(cleanup, server.port);
  const pending = expect(client.call(Hang, {})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  await client.close();
  await pending;
  await expect(client.call(Echo, { text: 'x' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
});

it('pools one client per node and replaces it when the address changes', async () => {
  const a = await echoServer();
  const b = await echoServer();
  const pool = new PeerPool({ nodeId: 'node-1', secret: SECRET, logger: captureLogger() });
  cleanup(() => pool.close());
  const first = pool.peer('server', `127.0.0.1:${a.server.port}`);
  expect(pool.peer('server', `127.0.0.1:${a.server.port}`)).toBe(first);
  await expect(first.call(Echo, { text: 'a' })).resolves.toMatchObject({ from: 'node-1' });
  const second = pool.peer('server', { host: '127.0.0.1', port: b.server.port });
  expect(second).not.toBe(first);
  await expect(second.call(Echo, { text: 'b' })).resolves.toMatchObject({ text: 'b' });
  expect(Object.keys(pool.stats())).toEqual(['server']);
  await pool.remove('server');
  expect(pool.stats()).toEqual({});
});

it('treats a peer announcing another node id as unreachable', async () => {
  const { server } = await echoServer();
  const pool = new PeerPool({ nodeId: 'node-1', secret: SECRET, logger: captureLogger() });
  cleanup(() => pool.close());
  const client = pool.peer('node-9', `127.0.0.1:${server.port}`);
  await expect(client.call(Echo, { text: 'x' }, { timeoutMs: 200 })).rejects.toMatchObject({
    code: 'UNAVAILABLE',
  });
});

it('batches the deliveries of one tick into one call per peer', async () => {
  const server = await startServer(cleanup);
  const batches: number[] = [];
  server.handle(Deliver, (req) => {
    batches.push(req.deliveries.length);
    return { failed: req.deliveries.flatMap((d, i) => (d.userId === 'bad' ? [i] : [])) };
  });
  const client = startClient(cleanup, server.port);
  const results: [string, string, string | undefined][] = [];
  const batcher = new DeliveryBatcher<Delivery>({
    maxBatch: 4,
    send: async (_peer, deliveries) => {
      const res = await client.call(Deliver, { deliveries: [...deliveries] });
      return deliveries.map((_d, i) =>
        res.failed.includes(i) ? new ChatError('NOT_FOUND', 'no such user') : undefined,
      );
    },
    onResult: (peer, d, err) => results.push([peer, d.userId, err?.code]),
  });
  for (let i = 0; i < 6; i++)
    batcher.add('server', { userId: i === 2 ? 'bad' : `u${i}`, event: { seq: i } });
  await batcher.drain();
  expect(batches).toEqual([4, 2]);
  expect(results).toHaveLength(6);
  expect(results.filter((r) => r[2] !== undefined)).toEqual([['server', 'bad', 'NOT_FOUND']]);

  batches.length = 0;
  for (let i = 0; i < 3; i++) batcher.add('server', { userId: `v${i}`, event: { seq: i } });
  await batcher.drain();
  expect(batches).toEqual([3]);
});

it('fails every item of a batch whose call fails', async () => {
  const outcomes: (string | undefined)[] = [];
  const calls: string[][] = [];
  const batcher = new DeliveryBatcher<string>({
    send: (peer, items) => {
      calls.push([...items]);
      return peer === 'down'
        ? Promise.reject(new ChatError('UNAVAILABLE', 'down'))
        : Promise.resolve();
    },
    onResult: (peer, item, err) => outcomes.push(`${peer}/${item}/${err?.code ?? 'ok'}`),
  });
  batcher.add('up', 'a');
  batcher.add('down', 'b');
  batcher.add('down', 'c');
  batcher.add('up', 'd');
  await batcher.drain();
  expect(calls).toEqual([
    ['a', 'd'],
    ['b', 'c'],
  ]);
  expect(outcomes.sort()).toEqual([
    'down/b/UNAVAILABLE',
    'down/c/UNAVAILABLE',
    'up/a/ok',
    'up/d/ok',
  ]);
});
