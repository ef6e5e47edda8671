/**
 * RPC between real node processes over mutual TLS, with the mutual handshake (issue 16, item 5).
 *
 * node-1 and node-2 are ordinary members with certificates from the cluster's local CA. node-3
 * is a member too, but advertises the address of an impostor: an insider that holds a cluster
 * certificate and not the cluster secret. The tests dial the nodes themselves, as a peer with
 * the right certificate and secret, a peer with another CA's certificate, and a replayer.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import type { Socket } from 'node:net';
import { connect as connectTls, createServer as createTlsServer } from 'node:tls';
import type { Server, TLSSocket } from 'node:tls';
import { ChatClient } from '@chat/client';
import { jsonCodec } from '@chat/protocol';
import {
  FrameDecoder,
  NONCE_BYTES,
  PeerClient,
  channelBinding,
  createPackr,
  defineMethod,
  encodeFrame,
  handshakeProof,
  parseAddress,
} from '@chat/rpc';
import type { RpcLogger, RpcTls } from '@chat/rpc';
import type { LocalTls } from '@chat/testkit';
import {
  LOOPBACK_NAMES,
  RawClient,
  TEST_CLUSTER_SECRET,
  TestCluster,
  createLocalCa,
  createLocalTls,
  testToken,
  waitFor,
} from '@chat/testkit';

const Deliver = defineMethod<{ deliveries: unknown }, { pushed: number }>('deliver');
const PEER_ID = 'test-peer';

let tls: LocalTls;
let cluster: TestCluster;
/** TLS material of a legitimate peer: the cluster CA, a certificate from it. */
let peerTls: RpcTls;
let impostor: Impostor;

beforeAll(async () => {
  tls = await createLocalTls();
  peerTls = { ca: readFileSync(tls.caFile), ...(await tls.ca.issue(PEER_ID, LOOPBACK_NAMES)) };
  impostor = await startImpostor(peerTls);
  // node-3 is a member from the start; it joins once it registers, at the impostor's address.
  cluster = await TestCluster.start({ nodes: 2, members: 3, tls });
  await cluster.startNode('node-3', { CHAT_RPC_ADVERTISE: impostor.address });
  await cluster.registryLiveMembers(3);
  await cluster.viewsAgree();
}, 90_000);

afterAll(async () => {
  await cluster?.close();
  await impostor?.close();
  await tls?.close();
});

// ---- helpers ----

const taken = new Set<string>();
/** An SDK client of `user` (device d1), routed by the registry; the caller connects it. */
function sdkClient(user: string): ChatClient {
  return new ChatClient({
    registryUrl: cluster.registryUrl,
    user,
    token: () => testToken(user, 'd1'),
  });
}

async function userOn(node: string, prefix: string): Promise<string> {
  for (let i = 0; i < 10_000; i++) {
    const id = `${prefix}${i}`;
    if (taken.has(id)) continue;
    if ((await cluster.route(id)).node === node) {
      taken.add(id);
      return id;
    }
  }
  throw new Error(`no user on ${node}`);
}

function rpcAddressOf(nodeId: string): { host: string; port: number } {
  const address = cluster.node(nodeId).listening.rpcAddress;
  if (typeof address !== 'string') throw new Error(`${nodeId} logged no rpcAddress`);
  return parseAddress(address);
}

/** The pino lines of a node's log with `reason` starting with `reason`. */
function logLinesWithReason(nodeId: string, reason: string): Record<string, unknown>[] {
  return readFileSync(cluster.node(nodeId).logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((l) => typeof l.reason === 'string' && l.reason.startsWith(reason));
}

const quietLogger: RpcLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => quietLogger,
};

/** Decoded RPC messages of a socket, in order. */
function messagesOf(socket: Socket): Record<string, unknown>[] {
  const decoder = new FrameDecoder(createPackr(), { maxFrameBytes: 4 << 20 });
  const out: Record<string, unknown>[] = [];
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const m of decoder.push(chunk)) out.push(m as Record<string, unknown>);
    } catch {
      socket.destroy();
    }
  });
  socket.on('error', () => undefined);
  return out;
}

function nextOf(messages: Record<string, unknown>[], t: string): Promise<Record<string, unknown>> {
  return waitFor(() => {
    const found = messages.find((m) => m.t === t);
    if (found === undefined) throw new Error(`no ${t} yet`);
    return found;
  }, 5000);
}

const frame = (msg: object): Buffer => encodeFrame(createPackr(), msg, 4 << 20);

/** A TLS connection to a node's RPC port as PEER_ID, with its messages. */
async function dialTls(
  nodeId: string,
): Promise<{ socket: TLSSocket; messages: Record<string, unknown>[]; closed: Promise<void> }> {
  const socket = connectTls({ ...rpcAddressOf(nodeId), ...peerTls });
  const messages = messagesOf(socket);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return { socket, messages, closed };
}

interface Impostor {
  readonly address: string;
  /** Every message dialers sent it. */
  readonly received: Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * A listener with a cluster certificate but without the secret: it accepts any dialer's proof
 * and answers `ready` with a made-up one, recording what dialers send.
 */
async function startImpostor(material: RpcTls): Promise<Impostor> {
  const received: Record<string, unknown>[] = [];
  const server: Server = createTlsServer(
    { ...material, requestCert: true, rejectUnauthorized: true },
    (socket) => {
      socket.on('error', () => undefined);
      const decoder = new FrameDecoder(createPackr(), { maxFrameBytes: 4 << 20 });
      socket.on('data', (chunk: Buffer) => {
        for (const value of decoder.push(chunk)) {
          const msg = value as Record<string, unknown>;
          received.push(msg);
          if (msg.t === 'auth')
            socket.write(frame({ t: 'ready', nodeId: 'node-3', proof: randomBytes(32) }));
        }
      });
      socket.write(frame({ t: 'hello', nodeId: 'node-3', nonce: randomBytes(NONCE_BYTES) }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ---- tests ----

it('delivers a message across nodes over mutual TLS', async () => {
  const sender = await userOn('node-1', 'tls-s-');
  const recipient = await userOn('node-2', 'tls-r-');
  // A raw device that never syncs: the event can only reach it over RPC from node-1.
  const raw = await RawClient.ready({
    url: cluster.node('node-2').url,
    codec: jsonCodec,
    user: recipient,
    autoAck: true,
  });
  const client = sdkClient(sender);
  try {
    await client.connect();
    expect(client.state.node).toBe('node-1');
    const { chatId } = await client.createChat([recipient]);
    const { messageId } = await client.send(chatId, 'over TLS');
    await raw.next((f) => f.t === 'evt' && f.kind === 'message' && f.messageId === messageId, 5000);
  } finally {
    await client.close();
    await raw.close();
  }
});

it('closes a plain-TCP peer without a hello', async () => {
  const socket = connectTcp(rpcAddressOf('node-1'));
  const messages = messagesOf(socket);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // What a peer of the plain protocol would send first; to a TLS server it is no ClientHello.
  socket.write(frame({ t: 'req', id: 1, m: 'deliver', p: { deliveries: [] } }));
  await closed;
  expect(messages).toEqual([]);
  await waitFor(() =>
    expect(logLinesWithReason('node-1', 'TLS handshake failed').length).toBeGreaterThan(0),
  );
});

it('refuses a dialer whose certificate comes from another CA, even with the secret', async () => {
  const before = logLinesWithReason('node-1', 'TLS handshake failed').length;
  const other = await createLocalCa('another CA');
  const stranger = await other.issue(PEER_ID, LOOPBACK_NAMES);
  const client = new PeerClient({
    nodeId: PEER_ID,
    secret: TEST_CLUSTER_SECRET,
    ...rpcAddressOf('node-1'),
    tls: { ca: peerTls.ca, ...stranger },
    logger: quietLogger,
    connectTimeoutMs: 1000,
  });
  try {
    await expect(
      client.call(Deliver, { deliveries: [] }, { timeoutMs: 1000 }),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(client.stats().connects).toBe(0);
    await waitFor(() =>
      expect(logLinesWithReason('node-1', 'TLS handshake failed').length).toBeGreaterThan(before),
    );
  } finally {
    await client.close();
  }
});

it('refuses a proof replayed from another connection, by a dialer with a cluster certificate', async () => {
  // Connection A: a proof made for it (with the secret) is accepted.
  const a = await dialTls('node-1');
  const helloA = await nextOf(a.messages, 'hello');
  const dialerNonce = randomBytes(NONCE_BYTES);
  const proof = handshakeProof(TEST_CLUSTER_SECRET, 'dialer', {
    dialerId: PEER_ID,
    listenerId: helloA.nodeId as string,
    dialerNonce,
    listenerNonce: helloA.nonce as Uint8Array,
    channelBinding: channelBinding(a.socket),
  });
  const captured = { t: 'auth', nodeId: PEER_ID, nonce: dialerNonce, proof };
  a.socket.write(frame(captured));
  await nextOf(a.messages, 'ready');
  a.socket.destroy();

  // Connection B: the same auth, replayed, is refused and none of its calls run.
  const before = logLinesWithReason('node-1', 'wrong cluster secret').length;
  const b = await dialTls('node-1');
  await nextOf(b.messages, 'hello');
  b.socket.write(
    Buffer.concat([
      frame(captured),
      frame({ t: 'req', id: 1, m: 'deliver', p: { deliveries: [] } }),
    ]),
  );
  await b.closed;
  expect(b.messages.map((m) => m.t)).toEqual(['hello']);
  await waitFor(() =>
    expect(
      logLinesWithReason('node-1', 'wrong cluster secret or a proof not made for this connection')
        .length,
    ).toBeGreaterThan(before),
  );
});

it('a node does not take a listener without the secret for a peer, even with a cluster certificate', async () => {
  const sender = await userOn('node-1', 'imp-s-');
  const recipient = await userOn('node-3', 'imp-r-');
  const client = sdkClient(sender);
  try {
    await client.connect();
    expect(client.state.node).toBe('node-1');
    const { chatId } = await client.createChat([recipient]);
    await client.send(chatId, 'for node-3 only');
    // node-1 dialed "node-3" (the impostor) and sent its proof, then refused the made-up one.
    await waitFor(
      () =>
        expect(
          logLinesWithReason('node-1', 'peer did not prove the cluster secret').length,
        ).toBeGreaterThan(0),
      10_000,
    );
    expect(impostor.received.some((m) => m.t === 'auth')).toBe(true);
    expect(impostor.received.filter((m) => m.t === 'req')).toEqual([]);
  } finally {
    await client.close();
  }
});

it("a peer's event payload cannot change the type of the frame a device receives", async () => {
  const user = await userOn('node-2', 'evt-');
  const raw = await RawClient.ready({ url: cluster.node('node-2').url, codec: jsonCodec, user });
  const peer = new PeerClient({
    nodeId: PEER_ID,
    secret: TEST_CLUSTER_SECRET,
    ...rpcAddressOf('node-2'),
    tls: peerTls,
    logger: quietLogger,
  });
  try {
    const seq = 1_000_000;
    const event = {
      t: 'welcome',
      seq,
      kind: 'message',
      chatId: 'c-forged',
      messageId: '1',
      from: 'mallory',
      body: 'hi',
      attachments: [],
      ts: Date.now(),
    };
    await expect(peer.call(Deliver, { deliveries: [{ userId: user, event }] })).resolves.toEqual({
      pushed: 1,
    });
    const received = await raw.next((f) => 'seq' in f && f.seq === seq, 5000);
    expect(received.t).toBe('evt');
    expect(raw.frames.filter((f) => f.t === 'welcome')).toHaveLength(1);
  } finally {
    await peer.close();
    await raw.close();
  }
});
