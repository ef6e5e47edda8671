/**
 * The lean WebSocket client: its frames, and a connection to an in-process `ws` server on
 * loopback (upgrade query with the features asked for, frames both ways, close codes, a 503
 * refusal with Retry-After). Fast: no node, no database.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { LeanSocket, maskedTextFrame, readFrame } from '../src/lean-socket';
import type { LeanHandlers } from '../src/lean-socket';
import { waitFor } from '../src/wait';

function unmask(frame: Buffer): string {
  const len = frame[1]! & 0x7f;
  const head = len === 126 ? 4 : 2;
  const mask = frame.subarray(head, head + 4);
  const payload = Buffer.from(frame.subarray(head + 4));
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return payload.toString('utf8');
}

describe('lean WebSocket frames', () => {
  it('masks short and 16-bit-length text frames', () => {
    expect(unmask(maskedTextFrame('{"t":"ack","seq":1}'))).toBe('{"t":"ack","seq":1}');
    const long = 'x'.repeat(300);
    const frame = maskedTextFrame(long);
    expect(frame[1]! & 0x7f).toBe(126);
    expect(frame.readUInt16BE(2)).toBe(300);
    expect(unmask(frame)).toBe(long);
  });

  it('reads whole unmasked server frames and waits for partial ones', () => {
    const payload = Buffer.from('{"t":"welcome"}');
    const frame = Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
    expect(readFrame(frame.subarray(0, 5))).toBeUndefined();
    const read = readFrame(Buffer.concat([frame, Buffer.from([0x81])]))!;
    expect(read.opcode).toBe(1);
    expect(read.size).toBe(frame.length);
    expect(read.payload.toString()).toBe('{"t":"welcome"}');
  });
});

/** What a LeanSocket reported, in order. */
function recorder(): { seen: string[]; handlers: LeanHandlers } {
  const seen: string[] = [];
  return {
    seen,
    handlers: {
      onRefused: (status, retryAfterSec) => seen.push(`refused ${status} ${retryAfterSec}`),
      onOpen: () => seen.push('open'),
      onFrame: (frame) => seen.push(`frame ${JSON.stringify(frame)}`),
      onClose: (code) => seen.push(`close ${code}`),
    },
  };
}

describe('LeanSocket', () => {
  let server: WebSocketServer;
  let url: string;
  /** The next connection the server accepts, with its upgrade request. */
  let accepted: Promise<{ ws: WebSocket; req: IncomingMessage }>;
  /** Set by a test: the server refuses the next upgrade with 503 and this Retry-After. */
  let refuseWith: string | undefined;
  const sockets: LeanSocket[] = [];

  const nextConnection = (): void => {
    accepted = new Promise((resolve) =>
      server.once('connection', (ws: WebSocket, req: IncomingMessage) => resolve({ ws, req })),
    );
  };

  beforeAll(async () => {
    server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('chat.v1.json') ? 'chat.v1.json' : false),
      verifyClient: (_info, done) =>
        refuseWith === undefined
          ? done(true)
          : done(false, 503, 'busy', { 'Retry-After': refuseWith }),
    });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
  });
  beforeEach(() => {
    refuseWith = undefined;
    nextConnection();
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });
  afterAll(async () => {
    for (const client of server.clients) client.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('asks for the given features, exchanges JSON frames and reports the close code', async () => {
    const { seen, handlers } = recorder();
    const socket = new LeanSocket(handlers, { features: ['no-echo', 'overlap-moves'] });
    sockets.push(socket);
    socket.connect(url, 'tok', undefined);
    const { ws, req } = await accepted;
    expect(req.url).toBe('/ws?token=tok&features=no-echo,overlap-moves');
    expect(ws.protocol).toBe('chat.v1.json');

    const received = new Promise<string>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(data.toString('utf8'))),
    );
    ws.send(JSON.stringify({ t: 'welcome', node: 'n1', seq: 3 }));
    await waitFor(() => expect(seen).toContain('frame {"t":"welcome","node":"n1","seq":3}'));
    socket.send({ t: 'pong', seq: 1, pad: 'x'.repeat(200) });
    expect(JSON.parse(await received)).toEqual({ t: 'pong', seq: 1, pad: 'x'.repeat(200) });

    ws.close(4001, 'moved');
    await waitFor(() => expect(seen.at(-1)).toBe('close 4001'));
    expect(seen).toEqual(['open', 'frame {"t":"welcome","node":"n1","seq":3}', 'close 4001']);
  });

  it('asks for no features unless told, and reports a connection lost without a close frame', async () => {
    const { seen, handlers } = recorder();
    const socket = new LeanSocket(handlers);
    sockets.push(socket);
    socket.connect(url, 'tok', undefined);
    const { ws, req } = await accepted;
    expect(req.url).toBe('/ws?token=tok');
    ws.terminate();
    await waitFor(() => expect(seen).toEqual(['open', 'close undefined']));
  });

  it('reports a refused upgrade with its Retry-After, and no close after it', async () => {
    const { seen, handlers } = recorder();
    refuseWith = '2';
    const socket = new LeanSocket(handlers);
    sockets.push(socket);
    socket.connect(url, 'tok', undefined);
    await waitFor(() => expect(seen).toEqual(['refused 503 2']));
    // A connection that does get through afterwards is reported as usual: nothing came between.
    refuseWith = undefined;
    socket.connect(url, 'tok', undefined);
    await accepted;
    await waitFor(() => expect(seen).toEqual(['refused 503 2', 'open']));
  });
});
