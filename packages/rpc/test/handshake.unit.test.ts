/**
 * Mutual authentication of RPC connections (issue 16, item 5): an impostor listener, a relayed
 * proof and a replayed proof are refused, over plain TCP and over mutual TLS.
 */
import { randomBytes } from 'node:crypto';
import { connect as connectTcp, createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { connect as connectTls, createServer as createTlsServer } from 'node:tls';
import { createLocalCa } from '@chat/testkit';
import { FrameDecoder, createPackr, defineMethod, encodeFrame } from '../src';
import type { RpcTls } from '../src';
import { captureLogger, startClient, startServer, useCleanup, waitFor } from './helpers';

const Echo = defineMethod<{ text: string }, { text: string; from: string }>('echo');

const cleanup = useCleanup();
const packr = createPackr();
const frame = (msg: object): Buffer => encodeFrame(packr, msg, 4096);

/** Decoded messages arriving on a raw socket, in order. */
function messagesOf(socket: Socket): Record<string, unknown>[] {
  const decoder = new FrameDecoder(createPackr(), { maxFrameBytes: 1 << 20 });
  const out: Record<string, unknown>[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const value of decoder.push(chunk)) out.push(value as Record<string, unknown>);
  });
  return out;
}

/** The first message with `t` in `messages`, polled for. */
function nextOf(messages: Record<string, unknown>[], t: string): Promise<Record<string, unknown>> {
  return waitFor(() => {
    const found = messages.find((m) => m.t === t);
    if (found === undefined) throw new Error(`no ${t} yet`);
    return found;
  });
}

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

function closedPromise(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

async function echoServer(options: { tls?: RpcTls } = {}) {
  const logger = captureLogger();
  const server = await startServer(cleanup, { logger, ...options });
  const callers: string[] = [];
  server.handle(Echo, (req, peer) => {
    callers.push(peer.nodeId);
    return { text: req.text, from: peer.nodeId };
  });
  return { server, logger, callers };
}

const refusedFor = (logger: ReturnType<typeof captureLogger>, reason: string): boolean =>
  logger.lines.some((l) => String(l.obj.reason).startsWith(reason));

describe('over plain TCP', () => {
  it('a dialer refuses a listener that does not prove the secret, and sends it nothing', async () => {
    // The impostor accepts any proof and answers `ready` with a made-up one.
    const received: Record<string, unknown>[][] = [];
    const impostor = createTcpServer((socket) => {
      const messages = messagesOf(socket);
      received.push(messages);
      socket.on('error', () => undefined);
      socket.write(frame({ t: 'hello', nodeId: 'server', nonce: randomBytes(32) }));
      void nextOf(messages, 'auth').then(
        () => socket.write(frame({ t: 'ready', nodeId: 'server', proof: randomBytes(32) })),
        () => undefined,
      );
    });
    const port = await listening(impostor);
    const logger = captureLogger();
    const client = startClient(cleanup, port, { logger, expectedNodeId: 'server' });
    await expect(client.call(Echo, { text: 'secret' }, { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await waitFor(() =>
      expect(refusedFor(logger, 'peer did not prove the cluster secret')).toBe(true),
    );
    expect(client.stats().connects).toBe(0);
    expect(received.flat().filter((m) => m.t === 'req')).toEqual([]);
  });

  it("refuses a dialer's proof relayed by a listener onto its own connection to the server", async () => {
    // The attacker dials the server, then poses as node "evil" to an honest dialer and passes
    // the server's nonce on: the honest dialer's proof must not open the server to it.
    const { server, logger, callers } = await echoServer();
    const toServer: {
      socket?: Socket;
      closed?: Promise<void>;
      messages?: Record<string, unknown>[];
    } = {};
    const attacker = createTcpServer((victim) => {
      victim.on('error', () => undefined);
      const fromVictim = messagesOf(victim);
      const upstream = connectToRpc(server.port);
      toServer.socket = upstream.socket;
      toServer.closed = closedPromise(upstream.socket);
      toServer.messages = upstream.messages;
      void (async () => {
        const hello = await nextOf(upstream.messages, 'hello');
        victim.write(frame({ ...hello, nodeId: 'evil' }));
        const auth = await nextOf(fromVictim, 'auth');
        upstream.socket.write(frame(auth));
      })().catch(() => undefined);
    });
    const port = await listening(attacker);
    const honest = startClient(cleanup, port, { nodeId: 'node-1', expectedNodeId: 'evil' });
    void honest.call(Echo, { text: 'x' }, { timeoutMs: 500 }).catch(() => undefined);
    await waitFor(() => expect(toServer.closed).toBeDefined());
    await toServer.closed;
    expect(toServer.messages?.some((m) => m.t === 'ready')).toBe(false);
    expect(refusedFor(logger, 'wrong cluster secret or a proof not made for this connection')).toBe(
      true,
    );
    expect(callers).toEqual([]);
  });

  it('refuses a proof replayed from a recorded connection', async () => {
    const { server, logger, callers } = await echoServer();
    // Record what an honest dialer sends, through a forwarding proxy.
    const recorded: Record<string, unknown>[] = [];
    const proxy = createTcpServer((inbound) => {
      const upstream = connectTcp({ host: '127.0.0.1', port: server.port });
      upstream.on('error', () => undefined);
      inbound.on('error', () => undefined);
      const decoder = new FrameDecoder(createPackr(), { maxFrameBytes: 1 << 20 });
      inbound.on('data', (chunk: Buffer) => {
        for (const v of decoder.push(chunk)) {
          recorded.push(v as Record<string, unknown>);
          // Frames after the handshake carry checksums once the dialer took the offer.
          if ((v as Record<string, unknown>).crc32 === true) decoder.expectChecksums();
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => inbound.write(chunk));
      cleanup(() => {
        inbound.destroy();
        upstream.destroy();
      });
    });
    const port = await listening(proxy);
    const honest = startClient(cleanup, port, { nodeId: 'node-1' });
    await expect(honest.call(Echo, { text: 'x' })).resolves.toMatchObject({ from: 'node-1' });
    const auth = await nextOf(recorded, 'auth');

    const replay = connectToRpc(server.port);
    await nextOf(replay.messages, 'hello');
    replay.socket.write(frame(auth));
    await closedPromise(replay.socket);
    expect(replay.messages.some((m) => m.t === 'ready')).toBe(false);
    expect(refusedFor(logger, 'wrong cluster secret or a proof not made for this connection')).toBe(
      true,
    );
    expect(callers).toEqual(['node-1']);
  });

  it('a checksum offer flipped off on the way (hello travels unchecked) opens no unchecked link', async () => {
    // A link that corrupts one byte of `hello` (true -> false is one bit in msgpack) would
    // otherwise leave the connection without frame checksums, authenticated, for good: every
    // later flipped byte would be delivered as a valid but wrong message.
    const { server, logger, callers } = await echoServer();
    const port = await helloRewritingRelay(server.port, (hello) => delete hello.crc32);
    const dialer = startClient(cleanup, port, { nodeId: 'node-1' });
    void dialer.call(Echo, { text: 'x' }, { timeoutMs: 500 }).catch(() => undefined);
    await waitFor(() =>
      expect(
        refusedFor(logger, 'wrong cluster secret or a proof not made for this connection'),
      ).toBe(true),
    );
    expect(callers).toEqual([]);
  });

  it('a listener that does not bind the offer (an older node) is still dialed', async () => {
    const { server, callers } = await echoServer();
    const port = await helloRewritingRelay(server.port, (hello) => delete hello.crc32Bound);
    const dialer = startClient(cleanup, port, { nodeId: 'node-1' });
    await expect(dialer.call(Echo, { text: 'x' })).resolves.toMatchObject({ from: 'node-1' });
    expect(callers).toEqual(['node-1']);
  });
});

/**
 * A relay to the server at `port` that passes the server's first frame (`hello`) on as
 * `rewrite` leaves it, and every other byte as it is; returns the relay's port.
 */
async function helloRewritingRelay(
  port: number,
  rewrite: (hello: Record<string, unknown>) => void,
): Promise<number> {
  const relay = createTcpServer((dialer) => {
    dialer.on('error', () => undefined);
    const upstream = connectTcp({ host: '127.0.0.1', port });
    upstream.on('error', () => undefined);
    cleanup(() => {
      upstream.destroy();
      dialer.destroy();
    });
    dialer.pipe(upstream);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 4 || head.length < 4 + head.readUInt32BE(0)) return;
      upstream.off('data', onData);
      const end = 4 + head.readUInt32BE(0);
      const hello = packr.unpack(head.subarray(4, end)) as Record<string, unknown>;
      rewrite(hello);
      dialer.write(frame(hello));
      dialer.write(head.subarray(end));
      upstream.pipe(dialer);
    };
    upstream.on('data', onData);
  });
  return listening(relay);
}

describe('over mutual TLS', () => {
  let tls: RpcTls;
  let ca: Awaited<ReturnType<typeof createLocalCa>>;
  beforeAll(async () => {
    ca = await createLocalCa('rpc test CA');
    const node = await ca.issue('node', ['127.0.0.1', 'localhost']);
    tls = { ca: ca.cert, ...node };
  });

  it('calls across nodes over TLS 1.3 with mutual authentication', async () => {
    const { server, callers } = await echoServer({ tls });
    const client = startClient(cleanup, server.port, { nodeId: 'node-1', tls });
    await expect(client.call(Echo, { text: 'hi' })).resolves.toEqual({
      text: 'hi',
      from: 'node-1',
    });
    expect(callers).toEqual(['node-1']);
  });

  it('refuses a dialer whose certificate comes from another CA, and logs why', async () => {
    const { server, logger, callers } = await echoServer({ tls });
    const other = await createLocalCa('another CA');
    const stranger = await other.issue('stranger', ['127.0.0.1']);
    const client = startClient(cleanup, server.port, {
      tls: { ca: ca.cert, ...stranger },
      connectTimeoutMs: 1000,
    });
    await expect(client.call(Echo, { text: 'x' }, { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await waitFor(() => expect(refusedFor(logger, 'TLS handshake failed')).toBe(true));
    expect(callers).toEqual([]);
  });

  it('a dialer refuses a listener whose certificate comes from another CA', async () => {
    const other = await createLocalCa('another CA');
    const stranger = await other.issue('stranger', ['127.0.0.1']);
    const { server, callers } = await echoServer({ tls: { ca: other.cert, ...stranger } });
    const logger = captureLogger();
    const client = startClient(cleanup, server.port, { tls, logger });
    await expect(client.call(Echo, { text: 'x' }, { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await waitFor(() => expect(refusedFor(logger, 'TLS handshake failed')).toBe(true));
    expect(callers).toEqual([]);
  });

  it('a proof relayed between two TLS sessions is refused, even with the right node ids', async () => {
    // An insider with a cluster certificate but not the secret relays the handshake between an
    // honest dialer and the server: the sessions' keying material differs, so the proof fails.
    const { server, logger, callers } = await echoServer({ tls });
    let upstreamClosed: Promise<void> | undefined;
    let upstreamMessages: Record<string, unknown>[] = [];
    const relay = createTlsServer({ ...tls, requestCert: false }, (victim) => {
      victim.on('error', () => undefined);
      const fromVictim = messagesOf(victim);
      const upstream = connectTls({ host: '127.0.0.1', port: server.port, ...tls });
      upstream.on('error', () => undefined);
      cleanup(() => {
        victim.destroy();
        upstream.destroy();
      });
      upstreamMessages = messagesOf(upstream);
      upstreamClosed = closedPromise(upstream);
      void (async () => {
        const hello = await nextOf(upstreamMessages, 'hello');
        victim.write(frame(hello));
        upstream.write(frame(await nextOf(fromVictim, 'auth')));
      })().catch(() => undefined);
    });
    const port = await listening(relay);
    const honest = startClient(cleanup, port, { nodeId: 'node-1', tls, expectedNodeId: 'server' });
    void honest.call(Echo, { text: 'x' }, { timeoutMs: 500 }).catch(() => undefined);
    await waitFor(() => expect(upstreamClosed).toBeDefined());
    await upstreamClosed;
    expect(upstreamMessages.some((m) => m.t === 'ready')).toBe(false);
    expect(refusedFor(logger, 'wrong cluster secret or a proof not made for this connection')).toBe(
      true,
    );
    expect(callers).toEqual([]);
  });
});

/** A raw plain-TCP connection to an RPC server, with its decoded messages. */
function connectToRpc(port: number): { socket: Socket; messages: Record<string, unknown>[] } {
  const socket = connectTcp({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  cleanup(() => {
    socket.destroy();
  });
  return { socket, messages: messagesOf(socket) };
}
