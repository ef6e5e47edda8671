/**
 * The fault proxy against a tiny in-process echo server: plain forwarding, delay (in order, both
 * directions), reset with RST, blackhole and heal, corruption, and a target that is down.
 * Loopback only, fast.
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { startFaultProxy } from '../src/fault-proxy';
import type { FaultProxy } from '../src/fault-proxy';
import { waitFor } from '../src/wait';

jest.setTimeout(10_000);

let echo: Server;
let echoPort: number;
const echoSockets = new Set<Socket>();
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  echo = createServer((socket) => {
    echoSockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => echoSockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
afterAll(async () => {
  for (const s of echoSockets) s.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

async function proxy(target = `127.0.0.1:${echoPort}`): Promise<FaultProxy> {
  const p = await startFaultProxy({ target });
  cleanups.push(() => p.close());
  return p;
}

interface Conn {
  readonly socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  readonly closed: Promise<{ error: NodeJS.ErrnoException | undefined }>;
}

async function open(port: number): Promise<Conn> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let error: NodeJS.ErrnoException | undefined;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', (err) => (error = err));
  const closed = new Promise<{ error: NodeJS.ErrnoException | undefined }>((resolve) =>
    socket.once('close', () => resolve({ error })),
  );
  cleanups.push(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed };
}

it('forwards bytes both ways and counts them', async () => {
  const p = await proxy();
  expect(p.address).toBe(`127.0.0.1:${p.port}`);
  const c = await open(p.port);
  c.socket.write('hello through the proxy');
  await waitFor(() => expect(c.received().toString()).toBe('hello through the proxy'));
  expect(p.stats).toMatchObject({ accepted: 1, active: 1, bytesUp: 23, bytesDown: 23 });
  c.socket.end();
  await c.closed;
  await waitFor(() => expect(p.stats.active).toBe(0));
});

it('delays every chunk in both directions and keeps their order', async () => {
  const p = await proxy();
  const c = await open(p.port);
  p.setDelay(100);
  const started = Date.now();
  const expected: string[] = [];
  for (let i = 0; i < 50; i++) {
    const part = `<${i}>`;
    expected.push(part);
    c.socket.write(part);
  }
  await waitFor(() => expect(c.received().toString()).toBe(expected.join('')), 5000, 5);
  // Up and down: at least two delays (a little timer slack allowed).
  expect(Date.now() - started).toBeGreaterThanOrEqual(190);

  // Back to no delay: what is sent now still arrives after what was queued, and at once.
  p.setDelay(0);
  const before = Date.now();
  c.socket.write('!');
  await waitFor(() => expect(c.received().toString()).toBe(expected.join('') + '!'), 5000, 5);
  expect(Date.now() - before).toBeLessThan(100);
});

it('tears every connection down with RST on resetAll, and accepts new ones', async () => {
  const p = await proxy();
  const a = await open(p.port);
  const b = await open(p.port);
  a.socket.write('x');
  await waitFor(() => expect(a.received().toString()).toBe('x'));
  p.resetAll();
  const [ca, cb] = await Promise.all([a.closed, b.closed]);
  expect(ca.error?.code).toBe('ECONNRESET');
  expect(cb.error?.code).toBe('ECONNRESET');
  expect(p.stats.resets).toBe(2);
  await waitFor(() => expect(echoSockets.size).toBe(0));

  const c = await open(p.port);
  c.socket.write('again');
  await waitFor(() => expect(c.received().toString()).toBe('again'));
});

it('drops every byte while blackholed, keeps the connection, and forwards again after healing', async () => {
  const p = await proxy();
  const c = await open(p.port);
  c.socket.write('before');
  await waitFor(() => expect(c.received().toString()).toBe('before'));

  p.blackhole(true);
  c.socket.write('lost in the void');
  await waitFor(() => expect(p.stats.bytesDropped).toBe(16));
  // A connection opened during the partition is accepted too, and hears nothing.
  const d = await open(p.port);
  d.socket.write('also lost');
  await waitFor(() => expect(p.stats.bytesDropped).toBe(25));
  expect(c.received().toString()).toBe('before');
  expect(c.socket.destroyed).toBe(false);

  p.blackhole(false);
  c.socket.write('after');
  d.socket.write('d-after');
  await waitFor(() => expect(c.received().toString()).toBe('beforeafter'));
  await waitFor(() => expect(d.received().toString()).toBe('d-after'));
});

it('resets on heal a side whose peer went away during the blackhole', async () => {
  const p = await proxy();
  const c = await open(p.port);
  c.socket.write('x');
  await waitFor(() => expect(c.received().toString()).toBe('x'));
  p.blackhole(true);
  for (const s of echoSockets) s.destroy();
  await waitFor(() => expect(echoSockets.size).toBe(0));
  expect(c.socket.destroyed).toBe(false);
  p.blackhole(false);
  expect((await c.closed).error?.code).toBe('ECONNRESET');
});

it('flips bytes when corrupting, and stops when told', async () => {
  const p = await proxy();
  const c = await open(p.port);
  p.corrupt(true);
  const payload = Buffer.alloc(64, 0x41);
  c.socket.write(payload);
  await waitFor(() => expect(c.received().length).toBe(64));
  expect(c.received().equals(payload)).toBe(false);
  expect(p.stats.chunksCorrupted).toBeGreaterThanOrEqual(1);

  p.corrupt(false);
  const c2 = await open(p.port);
  c2.socket.write(payload);
  await waitFor(() => expect(c2.received().length).toBe(64));
  expect(c2.received().equals(payload)).toBe(true);
  expect(() => p.corrupt(2)).toThrow(RangeError);
});

it('resets the client when the target is down', async () => {
  const down = createServer();
  await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
  const deadPort = (down.address() as AddressInfo).port;
  await new Promise<void>((resolve) => down.close(() => resolve()));
  const p = await proxy(`http://127.0.0.1:${deadPort}`);
  const c = await open(p.port);
  expect((await c.closed).error?.code).toBe('ECONNRESET');
});

it('closes every connection on close, without an RST (the proxy went away, not the peer)', async () => {
  const p = await startFaultProxy({ target: `127.0.0.1:${echoPort}` });
  const c = await open(p.port);
  c.socket.write('x');
  await waitFor(() => expect(c.received().toString()).toBe('x'));
  await p.close();
  expect((await c.closed).error).toBeUndefined();
});
